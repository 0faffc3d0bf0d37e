"""Run a real lakeFS server locally: local KV under one data dir, and block storage either in
that dir (the quick default) or on an S3-compatible store (`S3Blockstore`: SeaweedFS started by
orchestration/dev/seaweedfs.py, or any S3), where lakeFS garbage collection can delete bytes.

Credentials are fixed by the caller (from the environment), and lakeFS's `installation`
settings create that admin user on first start, so no setup step is needed.

A start on a data dir that holds no lakeFS database yet is a first setup (`fresh`): only then
does `setup_repository` create the project's repository. On an existing data dir a missing
repository means lost data, and nothing creates it behind the user's back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orchestration.dev.lakefs_binary import find_lakefs_binary
from resources.lakefs import LakeFSResource, RepositoryMissingError


@dataclass(frozen=True)
class S3Blockstore:
    """Where lakeFS keeps its objects when they live on S3: a repository's storage namespace is
    then `s3://<bucket>/<repository>`."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    region: str = "us-east-1"

    def namespace(self, repository: str) -> str:
        return f"s3://{self.bucket}/{repository}"


@dataclass
class LocalLakeFS:
    data_dir: Path
    access_key_id: str
    secret_access_key: str
    port: int = 8000
    binary: Path | None = None
    s3: S3Blockstore | None = None  # None: the local blockstore under data_dir
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # set by start(): True when this start found no lakeFS database in data_dir (first setup)
    fresh: bool = field(default=False, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "lakefs.pid"

    def config_yaml(self, encrypt_key: str) -> str:
        return "\n".join([
            f"listen_address: 127.0.0.1:{self.port}",
            "database:",
            "  type: local",
            "  local:",
            f"    path: {self.data_dir / 'kv'}",
            *self._blockstore_yaml(),
            "auth:",
            "  encrypt:",
            # Encrypts the stored credentials; see encrypt_key().
            f"    secret_key: {encrypt_key}",
            # A local server never phones home: no usage stats, update or audit checks.
            "stats:",
            "  enabled: false",
            "email_subscription:",
            "  enabled: false",
            "security:",
            "  check_latest_version: false",
            '  audit_check_url: ""',
            "logging:",
            "  level: WARN",
            f"  output: {self.data_dir / 'lakefs.log'}",
            "installation:",
            "  user_name: admin",
            f"  access_key_id: {self.access_key_id}",
            f"  secret_access_key: {self.secret_access_key}",
            "",
        ])

    def _blockstore_yaml(self) -> list[str]:
        if self.s3 is None:
            return ["blockstore:", "  type: local", "  local:", f"    path: {self.data_dir / 'blocks'}"]
        return ["blockstore:", "  type: s3", "  s3:", f"    endpoint: {self.s3.endpoint}",
                "    force_path_style: true", "    discover_bucket_region: false",
                f"    region: {self.s3.region}", "    credentials:",
                f"      access_key_id: {self.s3.access_key_id}",
                f"      secret_access_key: {self.s3.secret_access_key}"]

    def namespace(self, repository: str) -> str:
        """The storage namespace a repository of this server gets."""
        return self.s3.namespace(repository) if self.s3 else f"local://{repository}"

    def start(self, timeout_s: float = 60.0) -> LocalLakeFS:
        """Start the server in its own process group and wait until it is healthy."""
        if is_healthy(self.endpoint):
            raise RuntimeError(f"something already serves {self.endpoint}; stop it or pick a port")
        binary = self.binary or find_lakefs_binary()
        self.fresh = not (self.data_dir / "kv").exists()
        config = self.write_config()
        with open(self.data_dir / "lakefs.stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [str(binary), "run", "--config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.data_dir / "lakefs.stdout.log").read_text()[-2000:]
                raise RuntimeError(f"lakeFS exited with {self.process.returncode}:\n{log}")
            if is_healthy(self.endpoint):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"lakeFS did not become healthy at {self.endpoint} in {timeout_s} s")

    def write_config(self) -> Path:
        """Write lakefs.yaml readable by its owner only: it holds the admin's secret and the
        encryption key. The folder (database, blocks, logs) is the owner's only too."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # mkdir's mode does not change a folder that already exists
        config = self.data_dir / "lakefs.yaml"
        text = self.config_yaml(self.encrypt_key(config))
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(fd, 0o600)  # O_CREAT's mode does not change a file older code wrote 0644
            out.write(text)
        return config

    def encrypt_key(self, config: Path) -> str:
        """The key lakeFS encrypts stored credentials with: random, made once per data dir and
        then kept, because lakeFS cannot decrypt its admin's secret under another key."""
        with contextlib.suppress(OSError, yaml.YAMLError, TypeError, KeyError):
            key = yaml.safe_load(config.read_text())["auth"]["encrypt"]["secret_key"]
            if isinstance(key, str) and key:
                return key
        if (self.data_dir / "kv").exists():  # a database from older code (derived key), config lost
            return f"vcurate-local-{self.access_key_id}"
        return f"vcurate-{secrets.token_hex(32)}"  # the prefix keeps YAML reading it as text

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL if it lingers."""
        pid = self.process.pid if self.process else _read_pid(self.pid_file)
        if pid is not None:
            _stop_group(pid, timeout_s)
        if self.process is not None:
            self.process.wait(timeout=timeout_s)
            self.process = None
        self.pid_file.unlink(missing_ok=True)

    def setup_repository(self, lakefs: LakeFSResource) -> bool:
        """Create `lakefs`'s repository on first setup of this data dir (True when created);
        RepositoryMissingError when it is missing from a data dir that already held lakeFS."""
        try:
            lakefs.require_repository()
            return False
        except RepositoryMissingError as exc:
            if not self.fresh:
                raise RepositoryMissingError(
                    f"{exc} (The local data dir {self.data_dir} already held lakeFS, so a "
                    f"missing repository is not created by itself.)") from None
        return lakefs.create_repository()

    def __enter__(self) -> LocalLakeFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _stop_group(pid: int, timeout_s: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap our own child so it does not linger as a zombie
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)

"""Run a real lakeFS server locally: local block storage and local KV under one data dir.

Credentials are fixed by the caller (from the environment), and lakeFS's `installation`
settings create that admin user on first start, so no setup step is needed.

A start on a data dir that holds no lakeFS database yet is a first setup (`fresh`): only then
does `setup_repository` create the project's repository. On an existing data dir a missing
repository means lost data, and nothing creates it behind the user's back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.dev.lakefs_binary import find_lakefs_binary
from resources.lakefs import LakeFSResource, RepositoryMissingError


@dataclass
class LocalLakeFS:
    data_dir: Path
    access_key_id: str
    secret_access_key: str
    port: int = 8000
    binary: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # set by start(): True when this start found no lakeFS database in data_dir (first setup)
    fresh: bool = field(default=False, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "lakefs.pid"

    def config_yaml(self) -> str:
        return "\n".join([
            f"listen_address: 127.0.0.1:{self.port}",
            "database:",
            "  type: local",
            "  local:",
            f"    path: {self.data_dir / 'kv'}",
            "blockstore:",
            "  type: local",
            "  local:",
            f"    path: {self.data_dir / 'blocks'}",
            "auth:",
            "  encrypt:",
            # Only encrypts stored credentials of this local, single-user dev server.
            f"    secret_key: vcurate-local-{self.access_key_id}",
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

    def start(self, timeout_s: float = 60.0) -> LocalLakeFS:
        """Start the server in its own process group and wait until it is healthy."""
        if is_healthy(self.endpoint):
            raise RuntimeError(f"something already serves {self.endpoint}; stop it or pick a port")
        binary = self.binary or find_lakefs_binary()
        self.fresh = not (self.data_dir / "kv").exists()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "lakefs.yaml"
        config.write_text(self.config_yaml())
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

"""An S3-compatible object store run locally, for lakeFS's S3 blockstore: SeaweedFS.

lakeFS deletes bytes only through its garbage collector, which runs against S3 (not the local
blockstore), so the physical takedown needs an object store. SeaweedFS because it builds from
its Go module with the machine's Go, like lakeFS (`seaweedfs-server/go.mod`), runs as one
`weed server` process holding master, volume, filer and S3 gateway, and its gateway speaks the
S3 that lakeFS and Hadoop's S3A use on AWS (SigV4, ranges, multipart, DeleteObjects); it is
Apache-2.0 (MinIO's server, the other candidate, is AGPL-3.0).

Binary order: `$VCURATE_WEED_BIN`; a `weed` on PATH; the cached build; a fresh build (minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from media.files import atomic_path
from orchestration.dev.lakefs_binary import cache_dir
from orchestration.dev.lakefs_server import S3Blockstore, _read_pid, _stop_group
from resources.object_store import ObjectStore

SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"
GO_MODULE_DIR = Path(__file__).resolve().parents[2] / "seaweedfs-server"


def cached_weed_path() -> Path:
    words = (GO_MODULE_DIR / "go.mod").read_text().split()
    version = words[words.index(SEAWEEDFS_MODULE) + 1]
    return cache_dir() / f"seaweedfs-{version}" / "weed"


def find_weed_binary(log: bool = True) -> Path:
    explicit = os.environ.get("VCURATE_WEED_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise FileNotFoundError(f"VCURATE_WEED_BIN={explicit} is not an executable file")
        return Path(explicit)
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    cached = cached_weed_path()
    if os.access(cached, os.X_OK):
        return cached
    if not shutil.which("go"):
        raise FileNotFoundError("SeaweedFS (`weed`) is not installed and there is no Go to build it: "
                                "install Go, or point VCURATE_WEED_BIN at a weed binary")
    return build_weed(cached, log=log)


def build_weed(target: Path, log: bool = True) -> Path:
    """Build the pinned SeaweedFS with the machine's Go into `target` (several minutes, once)."""
    started = time.monotonic()
    if log:
        print("[seaweedfs] building SeaweedFS from its Go module (first run only)...", flush=True)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        proc = subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial),
                               f"{SEAWEEDFS_MODULE}/weed"], cwd=GO_MODULE_DIR, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building SeaweedFS failed:\n{proc.stderr[-4000:]}")
    if log:
        print(f"[seaweedfs] built {target} in {time.monotonic() - started:.0f} s", flush=True)
    return target


def _free_port_pair() -> int:
    """A port p with p and p + 10000 free: SeaweedFS serves gRPC on each port + 10000."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


@dataclass
class LocalS3:
    """One `weed server` with its S3 gateway on 127.0.0.1, data under `data_dir`."""

    data_dir: Path
    access_key_id: str
    secret_access_key: str
    bucket: str = "vcurate"
    binary: Path | None = None
    s3_port: int = field(default_factory=_free_port_pair)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def blockstore(self) -> S3Blockstore:
        return S3Blockstore(self.endpoint, self.access_key_id, self.secret_access_key, self.bucket)

    def store(self) -> ObjectStore:
        return ObjectStore(self.endpoint, self.access_key_id, self.secret_access_key)

    def client(self):
        return self.store().client

    def start(self, timeout_s: float = 120.0) -> LocalS3:
        binary = self.binary or find_weed_binary()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(exist_ok=True)
        config = self.data_dir / "s3.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:  # the gateway's only identity: the one lakeFS and Spark use
            json.dump({"identities": [{"name": "vcurate", "credentials": [
                {"accessKey": self.access_key_id, "secretKey": self.secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, out)
        ports = [_free_port_pair() for _ in range(3)]
        args = [str(binary), "server", f"-dir={self.data_dir / 'data'}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", f"-master.port={ports[0]}", f"-volume.port={ports[1]}",
                "-master.volumeSizeLimitMB=64", "-volume.max=0", "-filer", f"-filer.port={ports[2]}",
                "-s3", f"-s3.port={self.s3_port}", f"-s3.config={config}"]
        with open(self.data_dir / "weed.log", "ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        (self.data_dir / "weed.pid").write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode}:\n"
                                   f"{(self.data_dir / 'weed.log').read_text()[-2000:]}")
            try:  # ready once the gateway answers and a bucket can be made (volumes allocated)
                s3 = self.client()
                if self.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                    s3.create_bucket(Bucket=self.bucket)
                s3.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                s3.delete_object(Bucket=self.bucket, Key=".ready")
                return self
            except Exception:  # noqa: BLE001 - not up yet: connection refused, 5xx, no volume
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"SeaweedFS's S3 gateway did not come up at {self.endpoint} in {timeout_s} s")

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix` in the bucket, by key: what a physical scan reads."""
        return self.store().objects(self.bucket, prefix)

    def stop(self, timeout_s: float = 15.0) -> None:
        pid = self.process.pid if self.process else _read_pid(self.data_dir / "weed.pid")
        if pid is not None:
            _stop_group(pid, timeout_s)
        if self.process is not None:
            self.process.wait(timeout=timeout_s)
            self.process = None
        (self.data_dir / "weed.pid").unlink(missing_ok=True)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Provision the `lakefs` server binary for local development, tests and the demo.

Order: `$VCURATE_LAKEFS_BIN`; a `lakefs` on PATH; the cached build of the pinned version;
a fresh build from the pinned Go module (`lakefs-server/go.mod`) with the machine's Go;
else the official `lakefs` Python package downloads the release binary (needs GitHub).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from media.files import atomic_path

LAKEFS_VERSION = "0.113.0"
GO_MODULE_DIR = Path(__file__).resolve().parents[2] / "lakefs-server"
# lakeFS's go:generate lines pin this generator; the published module omits its output.
OAPI_CODEGEN = "github.com/deepmap/oapi-codegen/cmd/oapi-codegen@v1.5.6"
_GENERATED = (
    ("pkg/api/apigen", ["-package", "apigen", "-generate", "types,client,chi-server,spec",
                        "-templates", "../tmpl", "-o", "lakefs.gen.go",
                        "../../../api/swagger.yml"]),
    ("pkg/auth", ["-package", "auth", "-generate", "types,client", "-o", "client.gen.go",
                  "../../api/authorization.yml"]),
)
_UI_PLACEHOLDER = (
    "<!doctype html><title>lakeFS</title><p>This lakeFS was built without its web UI (npm was "
    "not available). Browse commits with <code>vcurate lakefs log</code> or the API.</p>"
)


def cache_dir() -> Path:
    return Path(os.environ.get("VCURATE_CACHE", "~/.cache/vcurate")).expanduser()


def cached_binary_path() -> Path:
    return cache_dir() / f"lakefs-{LAKEFS_VERSION}" / "lakefs"


def find_lakefs_binary(log: bool = True) -> Path:
    """Return a runnable lakeFS server binary, building or downloading it if needed."""
    explicit = os.environ.get("VCURATE_LAKEFS_BIN")
    if explicit:
        path = Path(explicit)
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"VCURATE_LAKEFS_BIN={explicit} is not an executable file")
        return path
    on_path = shutil.which("lakefs")
    if on_path:
        return Path(on_path)
    cached = cached_binary_path()
    if os.access(cached, os.X_OK):
        return cached
    if shutil.which("go"):
        return build_lakefs_from_go_module(cached, log=log)
    return download_lakefs_release(cached, log=log)


def build_lakefs_from_go_module(target: Path, log: bool = True) -> Path:
    """Build the pinned lakeFS with the machine's Go into `target` (minutes, once)."""
    started = time.monotonic()
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    _say(log, f"building lakeFS v{LAKEFS_VERSION} from its Go module (first run only)...")
    info = json.loads(_run(["go", "mod", "download", "-json", "github.com/treeverse/lakefs"],
                           GO_MODULE_DIR, env))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as work:
        src = Path(work) / "lakefs"
        shutil.copytree(info["Dir"], src)
        _make_writable(src)  # the module cache is read-only; we add generated files
        for package_dir, args in _GENERATED:
            _run(["go", "run", OAPI_CODEGEN, *args], src / package_dir, env)
        _build_web_ui(src / "webui", env, log)
        ldflags = f"-s -w -X github.com/treeverse/lakefs/pkg/version.Version={LAKEFS_VERSION}"
        with atomic_path(target) as partial:
            _run(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(partial),
                  "./cmd/lakefs"], src, env)
    _say(log, f"built {target} in {time.monotonic() - started:.0f} s")
    return target


def _build_web_ui(webui: Path, env: dict[str, str], log: bool) -> None:
    """The module ships the UI's sources and lockfile, not its bundle: build it with npm.

    Without npm (or if the build fails) a one-page placeholder keeps the server buildable;
    the API, the S3 gateway and everything vcurate does work the same without the UI.
    """
    if shutil.which("npm"):
        try:
            _say(log, "building the lakeFS web UI with npm (about a minute)...")
            _run(["npm", "ci", "--no-audit", "--no-fund"], webui, env)
            _run(["npm", "run", "build"], webui, env)
            if (webui / "dist" / "index.html").is_file():
                return
        except RuntimeError as exc:
            _say(log, f"web UI build failed, using a placeholder page: {str(exc)[:300]}")
    dist = webui / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text(_UI_PLACEHOLDER)


def download_lakefs_release(target: Path, log: bool = True) -> Path:
    """Let the official `lakefs` package fetch the release binary (needs GitHub access)."""
    from lakefs.__main__ import _determine_binary_path, _download_binaries

    _say(log, f"no Go toolchain: downloading the lakeFS v{LAKEFS_VERSION} release binary")
    _download_binaries(version=LAKEFS_VERSION)
    downloaded = Path(_determine_binary_path()) / "lakefs"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(downloaded, target)
    return target


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _say(log: bool, message: str) -> None:
    if log:
        print(f"[lakefs] {message}", flush=True)

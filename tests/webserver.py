"""A real `dagster-webserver` on a free loopback port, stopped with every process it spawned.

Used by the browser test and by docs/capture_demo_ui.py (the README's screenshots).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestration.dev.lakefs_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _stop(proc: subprocess.Popen) -> None:
    """Stop the webserver's process group and the code server it spawned in a session of its own."""
    pending = [proc.pid]
    tree: list[int] = []
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(_children(pid))
    for pid in reversed(tree):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def dagster_webserver(env: dict[str, str], cwd: Path, log_path: Path) -> Iterator[str]:
    """Serve orchestration.definitions; yields the base URL once /server_info answers.

    Dagster's CLI loads `.env` from its cwd OVER the environment: pass the project root as
    `cwd` to use the project's `.env`, any other folder to use `env` alone.
    """
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-webserver")), "-m", "orchestration.definitions",
             "-d", str(ROOT), "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"dagster-webserver exited:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            yield url
        finally:
            _stop(proc)

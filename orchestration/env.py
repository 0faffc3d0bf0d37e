"""Local environment for the CLI: the project's `.env` defaults and a persistent DAGSTER_HOME."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = PROJECT_ROOT / ".vcurate"


def load_project_env() -> None:
    """Apply `.env` (variables already set win, as with `dagster dev`) and set DAGSTER_HOME."""
    env_file = PROJECT_ROOT / ".env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                os.environ.setdefault(key.strip(), value.strip())
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(STATE_DIR / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = Path(__file__).with_name("dagster.yaml")
    if not config.exists() or config.read_text() == "telemetry:\n  enabled: false\n":  # session-1 file
        config.write_text(template.read_text())
    os.chdir(PROJECT_ROOT)  # .env paths are relative to the project, as for `dagster dev`


def lakefs_endpoint() -> str:
    return os.environ["LAKECTL_SERVER_ENDPOINT_URL"].rstrip("/")


def endpoint_is_local(endpoint: str) -> bool:
    return urlparse(endpoint).hostname in {"127.0.0.1", "localhost", "::1"}


def endpoint_port(endpoint: str) -> int:
    return urlparse(endpoint).port or 8000

"""Load YAML config files into pydantic models with errors that name the file and the field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is wrong; the message names the file, the field and what to do."""


def describe_validation_error(label: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (remove it or check its spelling)"
        lines.append(f"{label}: {where}: {message}")
    return "\n".join(lines)


def read_yaml(path: Path) -> object:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_model(path: Path, model: type[M]) -> M:
    """Parse `path` as `model`, raising ConfigError with one line per bad field."""
    data = read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path.name, exc)) from exc


def content_hash(model: BaseModel) -> str:
    """Stable short hash of a config's values (not its formatting), for lineage metadata."""
    canonical = json.dumps(model.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]

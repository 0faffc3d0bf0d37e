"""Which lakeFS binary gets used: explicit setting, then PATH, then the cached build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration.dev import lakefs_binary


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_provisioning_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VCURATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VCURATE_LAKEFS_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    cached = _executable(lakefs_binary.cached_binary_path())
    assert lakefs_binary.find_lakefs_binary() == cached

    on_path = _executable(tmp_path / "bin" / "lakefs")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert lakefs_binary.find_lakefs_binary() == on_path

    explicit = _executable(tmp_path / "opt" / "lakefs-1.0")
    monkeypatch.setenv("VCURATE_LAKEFS_BIN", str(explicit))
    assert lakefs_binary.find_lakefs_binary() == explicit

    monkeypatch.setenv("VCURATE_LAKEFS_BIN", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="VCURATE_LAKEFS_BIN"):
        lakefs_binary.find_lakefs_binary()


def test_pinned_module_matches_the_version_we_build():
    go_mod = (lakefs_binary.GO_MODULE_DIR / "go.mod").read_text()
    assert f"github.com/treeverse/lakefs v{lakefs_binary.LAKEFS_VERSION}" in go_mod
    assert "replace github.com/karrick/godirwalk => github.com/treeverse/godirwalk" in go_mod
    assert os.access(lakefs_binary.GO_MODULE_DIR / "go.sum", os.R_OK)

"""Source registry validation: every bad entry fails with the file, source and field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resources.config_files import ConfigError
from resources.sources import list_source_files, load_source_registry


def _registry(tmp_path: Path, *sources: dict, **top: object) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({**top, "sources": list(sources)}))
    return path


def _entry(**overrides: object) -> dict:
    return {"id": "web-cc", "kind": "local", "uri": "videos", "license": "CC-BY-4.0", **overrides}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    return tmp_path


def test_valid_registry_normalises_licence(root: Path):
    registry = load_source_registry(_registry(root, _entry(license="cc-by-4.0")))
    assert registry.get("web-cc").license == "CC-BY-4.0"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(licence="MIT"), "sources.yaml: source 'web-cc': licence: unknown key"),
        (_entry(license="cc-by-foo"),
         "sources.yaml: source 'web-cc': license: Value error, license 'cc-by-foo' is not a "
         "known licence id"),
        (_entry(uri="missing"),
         "sources.yaml: source 'web-cc': uri: directory 'missing' does not exist"),
        (_entry(uri="../.."), "sources.yaml: source 'web-cc': uri: path '../..' escapes the "
                              "registry root"),
        (_entry(kind="ftp"), "sources.yaml: source 'web-cc': kind: Input should be"),
        (_entry(id="Web CC"), "sources.yaml: source 'Web CC': id: String should match pattern"),
        (_entry(kind="s3", uri="bucket/prefix"),
         "sources.yaml: source 'web-cc': uri: 'bucket/prefix' is not an s3://bucket/prefix URI"),
        (_entry(kind="manifest", uri="list.txt"),
         "sources.yaml: source 'web-cc': uri: manifest file 'list.txt' does not exist"),
    ],
)
def test_bad_entries_name_the_field(root: Path, entry: dict, message: str):
    with pytest.raises(ConfigError) as error:
        load_source_registry(_registry(root, entry))
    assert message in str(error.value)


def test_unknown_top_level_key_and_duplicate_ids(root: Path):
    with pytest.raises(ConfigError, match=r"sources.yaml: sauces: unknown key"):
        load_source_registry(_registry(root, _entry(), sauces=[]))
    with pytest.raises(ConfigError, match=r"source 'web-cc': id: duplicate source id"):
        load_source_registry(_registry(root, _entry(), _entry()))


def test_symlink_escaping_the_root_is_refused(root: Path, tmp_path_factory: pytest.TempPathFactory):
    outside = tmp_path_factory.mktemp("outside")
    (root / "sneaky").symlink_to(outside)
    with pytest.raises(ConfigError, match="escapes the registry root"):
        load_source_registry(_registry(root, _entry(uri="sneaky")))


def test_manifest_lists_entries_and_flags_missing_ones(root: Path):
    (root / "videos" / "a.mp4").write_bytes(b"abc")
    (root / "list.txt").write_text("# comment\nvideos/a.mp4\n\nvideos/gone.mp4\n")
    registry = load_source_registry(_registry(root, _entry(kind="manifest", uri="list.txt")))
    files = list_source_files(registry, registry.get("web-cc"), s3=None)
    assert [(f.uri, bool(f.error)) for f in files] == [("videos/a.mp4", False),
                                                       ("videos/gone.mp4", True)]
    assert "list.txt:4: file does not exist" in files[1].error

    (root / "list.txt").write_text("../../etc/passwd\n")
    with pytest.raises(ConfigError, match=r"list.txt:1: path '../../etc/passwd' escapes"):
        list_source_files(registry, registry.get("web-cc"), s3=None)


def test_local_listing_skips_hidden_and_documentation_files(root: Path):
    for name in ("b.mp4", "a.mov", ".DS_Store", "ATTRIBUTION.md", "notes.txt"):
        (root / "videos" / name).write_bytes(b"x")
    registry = load_source_registry(_registry(root, _entry()))
    files = list_source_files(registry, registry.get("web-cc"), s3=None)
    assert [f.uri for f in files] == ["videos/a.mov", "videos/b.mp4", "videos/notes.txt"]

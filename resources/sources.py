"""The source registry: where raw video comes from, under which licence.

`sources.yaml` lists sources of three kinds:

* `local`: a directory, relative to the registry's `root` (default: the file's folder);
* `s3`: an `s3://bucket/prefix/` on any S3-compatible endpoint (read through dagster-aws);
* `manifest`: a text file of URIs, one per line (paths under `root`, or `s3://` URIs).

Every path must stay inside `root`; a bad entry fails with the file, source and field named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from media.files import atomic_path
from resources.config_files import ConfigError, describe_validation_error, read_yaml
from resources.redact import redact

# A source id is also a Dagster partition key and part of lakeFS branch names.
SOURCE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"

# SPDX identifiers (plus two house values) a source may declare; case-insensitive on input.
KNOWN_LICENSES = (
    "CC0-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-2.0", "CC-BY-SA-3.0",
    "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0",
    "MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "GPL-2.0", "GPL-3.0", "LGPL-2.1",
    "MPL-2.0", "public-domain", "proprietary", "unknown",
)
_LICENSE_BY_KEY = {name.lower(): name for name in KNOWN_LICENSES}
# Documentation that travels with footage (ATTRIBUTION.md, LICENSE, ...) is not content.
_DOC_STEMS = {"README", "ATTRIBUTION", "LICENSE", "LICENCE", "NOTICE", "COPYING", "CREDITS"}
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,62})/(?P<prefix>.*)$")


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SOURCE_ID_PATTERN)
    kind: Literal["local", "s3", "manifest"]
    uri: str = Field(min_length=1)
    license: str
    notes: str = ""

    @field_validator("license")
    @classmethod
    def _known_license(cls, value: str) -> str:
        canonical = _LICENSE_BY_KEY.get(value.strip().lower())
        if canonical is None:
            raise ValueError(
                f"license {value!r} is not a known licence id; use an SPDX id such as "
                f"CC-BY-4.0, or 'unknown' (known: {', '.join(KNOWN_LICENSES)})"
            )
        return canonical


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str = "."
    sources: list[SourceSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class SourceRegistry:
    path: Path
    root: Path
    sources: dict[str, SourceSpec]

    def get(self, source_id: str) -> SourceSpec:
        if source_id not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise ConfigError(f"{self.path.name}: no source {source_id!r} (registered: {known})")
        return self.sources[source_id]

    def resolve_local(self, uri: str, where: str) -> Path:
        """Resolve a path under root; `where` names the field in the error message."""
        path = (self.root / uri).resolve()
        if not path.is_relative_to(self.root):
            raise ConfigError(f"{where}: path {uri!r} escapes the registry root {self.root}")
        return path


def load_source_registry(path: Path) -> SourceRegistry:
    """Parse and validate `sources.yaml`; raises ConfigError naming file, source and field."""
    path = Path(path).resolve()
    data = read_yaml(path)
    label = path.name
    try:
        parsed = _RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_name_sources(describe_validation_error(label, exc), data)) from exc
    root = (path.parent / parsed.root).resolve()
    if not root.is_dir():
        raise ConfigError(f"{label}: root: directory {parsed.root!r} does not exist ({root})")
    sources: dict[str, SourceSpec] = {}
    for spec in parsed.sources:
        where = f"{label}: source {spec.id!r}"
        if spec.id in sources:
            raise ConfigError(f"{where}: id: duplicate source id")
        registry = SourceRegistry(path, root, sources)
        if spec.kind == "s3":
            if not _S3_URI.match(spec.uri):
                raise ConfigError(f"{where}: uri: {spec.uri!r} is not an s3://bucket/prefix URI")
        else:
            local = registry.resolve_local(spec.uri, f"{where}: uri")
            wanted = local.is_dir() if spec.kind == "local" else local.is_file()
            if not wanted:
                what = "directory" if spec.kind == "local" else "manifest file"
                raise ConfigError(f"{where}: uri: {what} {spec.uri!r} does not exist ({local})")
        sources[spec.id] = spec
    return SourceRegistry(path, root, sources)


REGISTRY_HEADER = (
    "# vcurate source registry: one entry per source of raw video (id, kind: local | s3 |\n"
    "# manifest, uri, license as an SPDX id, notes). `vcurate source add` edits this file;\n"
    "# the source sensor turns new entries into Dagster partitions.\n"
)


def registered_source_ids(path: Path) -> list[str]:
    """The ids a registry file lists (read as written, before validation; none if absent)."""
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return [s.get("id") for s in (data or {}).get("sources") or []]


def register_source(path: Path, ident: str, kind: str, uri: str, license: str, notes: str) -> None:
    """Add a source to the registry file. The new file is validated as the pipeline reads it
    before it replaces the old one, so a bad entry never reaches the registry."""
    data = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    data.setdefault("sources", [])
    if any(s.get("id") == ident for s in data["sources"]):
        raise ConfigError(f"{path}: source {ident!r} is already registered")
    data["sources"].append({"id": ident, "kind": kind, "uri": uri, "license": license, "notes": notes})
    candidate = path.with_name(f".{path.name}.new")
    candidate.write_text(REGISTRY_HEADER + yaml.safe_dump(data, sort_keys=False))
    try:
        load_source_registry(candidate)
    except Exception:
        candidate.unlink()
        raise
    candidate.replace(path)


def _name_sources(message: str, data: Any) -> str:
    """Turn `sources.2.license` into `source 'web-cc': license` where the id is known."""
    entries = data.get("sources") if isinstance(data, dict) else None

    def rename(match: re.Match[str]) -> str:
        index = int(match.group(1))
        entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
        ident = entry.get("id") if isinstance(entry, dict) else None
        return f"source {ident!r}: " if ident else f"sources[{index}]: "

    return re.sub(r"sources\.(\d+)\.", rename, message)


@dataclass(frozen=True)
class SourceFile:
    """One file a source lists. `fingerprint` changes whenever the content may have changed."""

    uri: str
    size: int
    fingerprint: str
    local_path: Path | None = None  # set for local files; S3 objects are fetched on demand
    error: str = ""  # set when a manifest entry cannot be listed
    error_kind: str = "missing_file"  # raw_pool's rejection reason when `error` is set


def list_source_files(
    registry: SourceRegistry, spec: SourceSpec, s3: Any | None
) -> list[SourceFile]:
    """Every file of a source, sorted by uri. `s3` is a boto3 client (needed for S3 URIs)."""
    if spec.kind == "local":
        files = list(_walk_local(registry, registry.resolve_local(spec.uri, spec.id)))
    elif spec.kind == "s3":
        files = list(_walk_s3(_require_s3(s3, spec), spec.uri))
    else:
        files = list(_read_manifest(registry, spec, s3))
    return sorted(files, key=lambda f: f.uri)


def _walk_local(registry: SourceRegistry, directory: Path) -> Iterator[SourceFile]:
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue  # hidden files (.DS_Store, editor swap files) are not content
        if path.name.split(".")[0].upper() in _DOC_STEMS or is_sidecar(path):
            continue
        if not path.resolve().is_relative_to(directory):
            # A symlink out of the source folder: listed as a rejected row, never read or hashed.
            uri = path.relative_to(registry.root).as_posix()
            yield SourceFile(uri, 0, f"outside:{uri}", error=f"{uri}: a symlink that leads outside the "
                             "source folder (not read)", error_kind="outside_source")
            continue
        yield _local_file(registry, path)


SIDECAR_SUFFIXES = (".json", ".txt")


def is_sidecar(path: Path) -> bool:
    """`clip.json` / `clip.txt` beside `clip.mp4` is the video's original text, not content."""
    return path.suffix.lower() in SIDECAR_SUFFIXES and any(
        sibling.is_file() and sibling.suffix.lower() not in SIDECAR_SUFFIXES
        for sibling in path.parent.glob(f"{glob_escape(path.stem)}.*"))


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def sidecar_text(video: Path) -> str | None:
    """The original text a source ships beside a local video: `title` and `description` (or
    `caption`) from `<stem>.json`, or the whole of `<stem>.txt`; None when there is none."""
    for suffix in SIDECAR_SUFFIXES:
        path = video.with_suffix(suffix)
        if not path.is_file():
            continue
        if suffix == ".txt":
            return " ".join(path.read_text(errors="replace").split()) or None
        try:
            data = json.loads(path.read_text(errors="replace"))
        except json.JSONDecodeError:
            return None
        if isinstance(data, dict):
            parts = [str(data[k]).strip() for k in ("title", "description", "caption") if data.get(k)]
            return " — ".join(parts) or None
    return None


def _local_file(registry: SourceRegistry, path: Path) -> SourceFile:
    stat = path.stat()
    uri = path.relative_to(registry.root).as_posix()
    return SourceFile(uri, stat.st_size, f"{stat.st_size}:{stat.st_mtime_ns}", local_path=path)


def _walk_s3(s3: Any, uri: str) -> Iterator[SourceFile]:
    match = _S3_URI.match(uri)
    assert match is not None  # validated when the registry loaded
    bucket, prefix = match["bucket"], match["prefix"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") or Path(key).name.startswith("."):
                continue
            etag = str(obj.get("ETag", "")).strip('"')
            yield SourceFile(f"s3://{bucket}/{key}", int(obj["Size"]), f"{obj['Size']}:{etag}")


def _read_manifest(
    registry: SourceRegistry, spec: SourceSpec, s3: Any | None
) -> Iterator[SourceFile]:
    manifest = registry.resolve_local(spec.uri, spec.id)
    for number, line in enumerate(manifest.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        where = f"{manifest.name}:{number}"
        if entry.startswith("s3://"):
            yield from _stat_s3(_require_s3(s3, spec), entry, where)
            continue
        path = registry.resolve_local(entry.removeprefix("file://"), where)
        if path.is_file():
            yield _local_file(registry, path)
        else:
            uri = path.relative_to(registry.root).as_posix()
            yield SourceFile(uri, 0, f"missing:{uri}", error=f"{where}: file does not exist")


def _stat_s3(s3: Any, uri: str, where: str) -> Iterator[SourceFile]:
    match = _S3_URI.match(uri)
    if not match:
        yield SourceFile(uri, 0, f"invalid:{uri}", error=f"{where}: not an s3://bucket/key URI")
        return
    try:
        head = s3.head_object(Bucket=match["bucket"], Key=match["prefix"])
    except Exception as exc:  # botocore raises ClientError subclasses per status code
        # botocore names the endpoint URL, with any credentials it carries; the text is committed
        yield SourceFile(uri, 0, f"missing:{uri}", error=f"{where}: cannot read object: {redact(str(exc))}")
        return
    etag = str(head.get("ETag", "")).strip('"')
    yield SourceFile(uri, int(head["ContentLength"]), f"{head['ContentLength']}:{etag}")


def _require_s3(s3: Any | None, spec: SourceSpec) -> Any:
    if s3 is None:
        raise ConfigError(f"source {spec.id!r}: s3:// URIs need the S3 resource configured")
    return s3


def s3_cache_folder(cache_dir: Path, uri: str) -> Path:
    """Where downloads of one S3 object live in the cache (one file per fingerprint). A key that
    would lead out of `cache_dir` (`..`, absolute or empty components) is refused."""
    match = _S3_URI.match(uri)
    if not match:
        raise ValueError(f"not an s3 URI: {uri}")
    parts = match["prefix"].split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"S3 key {match['prefix']!r} has an empty, '.' or '..' component")
    return cache_dir / match["bucket"] / match["prefix"]


def fetch_s3_object(s3: Any, uri: str, cache_dir: Path, fingerprint: str) -> Path:
    """Download an S3 object into the content cache (once per fingerprint) and return its path."""
    match = _S3_URI.match(uri)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint)
    target = s3_cache_folder(cache_dir, uri) / safe
    if not target.is_file():
        try:
            with atomic_path(target) as partial:  # a killed download never looks complete
                s3.download_file(match["bucket"], match["prefix"], str(partial))
        except Exception as exc:
            # Callers record this text (rows, Dagster's event log); botocore's names the endpoint
            # URL with any credentials in it, so neither it nor its chain is passed on.
            raise OSError(f"cannot fetch {uri}: {redact(str(exc))}") from None
    return target


class SourceRegistryResource(ConfigurableResource):
    """The registry file, the S3 client for `s3` sources, and the local work cache."""

    path: str
    s3: S3Resource
    cache_dir: str = ".vcurate/cache"

    def load(self) -> SourceRegistry:
        return load_source_registry(Path(self.path))

    def s3_client(self) -> Any:
        return self.s3.get_client()

    def cache(self, kind: str) -> Path:
        """A folder of the local work cache: `objects` (S3 downloads), `analysis`, ..."""
        return Path(self.cache_dir) / kind

    def original_text(self, registry: SourceRegistry, uri: str) -> str | None:
        """Sidecar title/description of a local video (S3 sources: not read yet)."""
        if uri.startswith("s3://"):
            return None
        try:
            return sidecar_text(registry.resolve_local(uri, uri))
        except ValueError:
            return None

    def local_path(self, registry: SourceRegistry, uri: str, fingerprint: str,
                   s3: Any | None = None) -> Path:
        """A readable local file for a listed uri (S3 objects are fetched once, then cached)."""
        if uri.startswith("s3://"):
            return fetch_s3_object(s3 or self.s3_client(), uri, self.cache("objects"),
                                   fingerprint)
        return registry.resolve_local(uri, uri)

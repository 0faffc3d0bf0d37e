"""The opt-out registry: sources and single videos that must never enter, or must leave.

A video entry matches by `video_id`, `sha256` or `uri` (whichever the requester knows),
optionally scoped to one source. The registry fails closed: a missing or unreadable file is an
error (a file that lists nothing is the empty registry), because a mistyped VCURATE_OPTOUT
would otherwise switch every opt-out off without a word. Entries are normalised on load
(uris as raw_pool records them, lower-case hashes) so that they compare equal to the tables.

Refusals on record name no video: raw_pool's row of an opted-out video and the audit's findings
after a purge hold `redacted(...)` digests of its identifiers, which an entry is matched against
(so the entry is known to be honoured) and which cannot be read back into an id or a uri.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from resources.config_files import ConfigError, describe_validation_error, load_model

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VIDEO_ID = re.compile(r"v[0-9a-f]{32}")
REDACTED = "redacted:"


def redacted(value: str) -> str:
    """The digest a refusal record keeps in place of an identifier (video_id, sha256, uri, clip
    or sample id, object path). Deterministic, so an entry can be matched against it; a prefix
    no real identifier has, so no table mistakes it for one."""
    if not value or value.startswith(REDACTED):
        return value
    return REDACTED + hashlib.sha256(b"vcurate-optout\0" + value.encode()).hexdigest()[:32]


_IDS = re.compile(r"\b(?:v[0-9a-f]{32}|c[0-9a-f]{24})\b")  # video ids, clip ids


def redact_ids(text: str) -> str:
    """`text` with every video and clip id replaced by its digest: for what Dagster's event log
    keeps (check examples), which no purge can rewrite. The digest still tells rows apart and
    matches `redacted(id)` of a row read from the table."""
    return _IDS.sub(lambda m: redacted(m.group(0)), text)


def normalise_uri(uri: str) -> str:
    """A uri as raw_pool records it: `s3://bucket/key` unchanged, a local file relative to the
    source registry's folder with `./`, `//` and trailing slashes removed. Absolute local paths
    and `..` are refused: they would match nothing and the opt-out would silently not apply."""
    uri = uri.strip()
    if uri.startswith("s3://"):
        return uri
    if uri.startswith("/"):
        raise ValueError(f"uri {uri!r} is absolute: give it relative to the folder of sources.yaml, "
                         "as `vcurate source list` and raw_pool show it (e.g. data/web-cc/x.mp4)")
    clean = posixpath.normpath(uri)
    if clean == "." or clean.startswith("../") or clean == "..":
        raise ValueError(f"uri {uri!r} leaves the source registry's folder")
    return clean


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1)
    requested_at: date | datetime
    requested_by: str = Field(min_length=1)


class SourceOptOut(_Entry):
    source: str


class VideoOptOut(_Entry):
    source: str | None = None
    video_id: str | None = None
    sha256: str | None = None
    uri: str | None = None

    @field_validator("uri")
    @classmethod
    def _normalise_uri(cls, uri: str | None) -> str | None:
        return normalise_uri(uri) if uri else uri

    @field_validator("sha256", "video_id")
    @classmethod
    def _normalise_hash(cls, value: str | None, info) -> str | None:
        if not value:
            return value
        value = value.strip().lower()
        pattern = _SHA256 if info.field_name == "sha256" else _VIDEO_ID
        if not pattern.fullmatch(value):
            shape = "64 hex digits" if info.field_name == "sha256" else "'v' and 32 hex digits"
            raise ValueError(f"{info.field_name} {value!r} is not {shape}")
        return value

    @model_validator(mode="after")
    def _identifies_a_video(self) -> VideoOptOut:
        if not (self.video_id or self.sha256 or self.uri):
            raise ValueError("a video opt-out needs one of video_id, sha256 or uri")
        return self

    def matches(self, source: str, video_id: str, sha256: str, uri: str) -> bool:
        if self.source and self.source != source:
            return False
        return (self.video_id == video_id) or (self.sha256 == sha256) or (self.uri == uri)

    def matches_refusal(self, row: dict) -> bool:
        """Whether a redacted refusal row (raw_pool, `redacted` identifiers) is this entry's."""
        if self.source and self.source != row["source"]:
            return False
        return any(mine and redacted(mine) == row[key]
                   for key, mine in (("video_id", self.video_id), ("sha256", self.sha256), ("uri", self.uri)))


class OptOutRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[SourceOptOut] = Field(default_factory=list)
    videos: list[VideoOptOut] = Field(default_factory=list)

    def for_source(self, source: str) -> SourceOptOut | None:
        return next((entry for entry in self.sources if entry.source == source), None)

    def for_video(self, source: str, video_id: str, sha256: str, uri: str) -> VideoOptOut | None:
        return next((e for e in self.videos if e.matches(source, video_id, sha256, uri)), None)

    def unknown_sources(self, registered: Iterable[str]) -> list[str]:
        """Entries naming a source the source registry does not know (they can match nothing)."""
        known = set(registered)
        named = [e.source for e in self.sources] + [e.source for e in self.videos if e.source]
        return sorted({s for s in named if s not in known})

    def unmatched(self, raw_rows: Iterable[dict]) -> list[str]:
        """Video entries that match no row of any raw_pool table (`raw_rows`: dicts with
        source, video_id, sha256, uri), described for a report; they protect nothing today."""
        rows = list(raw_rows)
        return [describe(e) for e in self.videos
                if not any(e.matches(r["source"], r["video_id"], r["sha256"], r["uri"])
                           or e.matches_refusal(r) for r in rows)]


def describe(entry: VideoOptOut) -> str:
    what = (f"video_id {entry.video_id}" if entry.video_id else
            f"sha256 {entry.sha256}" if entry.sha256 else f"uri {entry.uri}")
    return f"{what} in {entry.source or 'any source'}"


EMPTY_REGISTRY = "sources: []\nvideos: []\n"


def write_empty_registry(path: Path) -> Path:
    """Create an empty registry at `path` (a new project or a test); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EMPTY_REGISTRY)
    return path


def load_optouts(path: Path) -> OptOutRegistry:
    """The registry in `path`; ConfigError when the file is missing or invalid (fail closed)."""
    if not path.is_file():
        raise ConfigError(
            f"{path}: opt-out registry not found. vcurate refuses to run without one, since every "
            f"opt-out would be ignored; create it (an empty registry is `{EMPTY_REGISTRY.strip()}`) "
            "or point VCURATE_OPTOUT at the real file")
    return load_model(path, OptOutRegistry)


def add_optout(path: Path, entry: dict[str, str], whole_source: bool) -> None:
    """Append an opt-out (a whole source, or one video) to the registry file, validated as the
    pipeline reads it before the file is written. The first entry creates the file."""
    current = load_optouts(path) if path.exists() else OptOutRegistry()
    data = current.model_dump(mode="json", exclude_none=True)
    data["sources" if whole_source else "videos"].append(entry)
    # Written as normalised, so the file says exactly what is compared.
    try:
        data = OptOutRegistry.model_validate(data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error("opt-out", exc)) from exc
    path.write_text("# vcurate opt-out registry (see docs/operations.md, Opt-out)\n"
                    + yaml.safe_dump(data, sort_keys=False))


class OptOutResource(ConfigurableResource):
    """Where the opt-out registry file lives (`optout.yaml` by default)."""

    path: str = "optout.yaml"

    def load(self) -> OptOutRegistry:
        return load_optouts(Path(self.path))

"""The opt-out registry: sources and single videos that must never enter, or must leave.

A video entry matches by `video_id`, `sha256` or `uri` (whichever the requester knows),
optionally scoped to one source. A missing file means nobody has opted out yet.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, ConfigDict, Field, model_validator

from resources.config_files import load_model


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

    @model_validator(mode="after")
    def _identifies_a_video(self) -> VideoOptOut:
        if not (self.video_id or self.sha256 or self.uri):
            raise ValueError("a video opt-out needs one of video_id, sha256 or uri")
        return self

    def matches(self, source: str, video_id: str, sha256: str, uri: str) -> bool:
        if self.source and self.source != source:
            return False
        return (self.video_id == video_id) or (self.sha256 == sha256) or (self.uri == uri)


class OptOutRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[SourceOptOut] = Field(default_factory=list)
    videos: list[VideoOptOut] = Field(default_factory=list)

    def for_source(self, source: str) -> SourceOptOut | None:
        return next((entry for entry in self.sources if entry.source == source), None)

    def for_video(self, source: str, video_id: str, sha256: str, uri: str) -> VideoOptOut | None:
        return next((e for e in self.videos if e.matches(source, video_id, sha256, uri)), None)


def load_optouts(path: Path) -> OptOutRegistry:
    return load_model(path, OptOutRegistry) if path.is_file() else OptOutRegistry()


def add_optout(path: Path, entry: dict[str, str], whole_source: bool) -> None:
    """Append an opt-out (a whole source, or one video) to the registry file, validated as the
    pipeline reads it before the file is written."""
    data = load_optouts(path).model_dump(mode="json", exclude_none=True)
    data["sources" if whole_source else "videos"].append(entry)
    OptOutRegistry.model_validate(data)
    path.write_text("# vcurate opt-out registry (see docs/operations.md, Opt-out)\n"
                    + yaml.safe_dump(data, sort_keys=False))


class OptOutResource(ConfigurableResource):
    """Where the opt-out registry file lives (`optout.yaml` by default)."""

    path: str = "optout.yaml"

    def load(self) -> OptOutRegistry:
        return load_optouts(Path(self.path))

"""`vcurate review`: the review page, a small Starlette app over lakeFS.

It lists the clips waiting on main (route review, needs_review) by source and reason, plays each
one, shows its keyframes, signals and reasons, and records approve / reject decisions, one by
one or for a whole group, each as one write-audit-publish commit (assets/upkeep/reviews.py).

Who decides comes from the login, never from a form: on loopback with no credentials set, the
local OS user; otherwise HTTP basic auth (VCURATE_REVIEW_USERS="ana:secret,bo:secret") or a token
(VCURATE_REVIEW_TOKEN="name:secret", sent as `Authorization: Bearer secret` or once as
`?token=secret`, then kept in an HttpOnly cookie). Bound off loopback it refuses to start without.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hmac
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagster_aws.s3 import S3Resource
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from assets.common.layout import preview_cache_dir, tier_path
from assets.upkeep.reviews import Decision, ReviewError, record_decisions, review_queue
from media.export.preview import encode_preview
from quality_checks.policy.stages import STAGES
from resources.lakefs import LakeFSResource
from resources.sources import SourceRegistryResource

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PAGE = Path(__file__).with_name("review_page.html")
COOKIE = "vcurate_review_token"
SHOWN_SIGNALS = ("license", "nsfw_max", "watermark_score", "text_ratio_max", "subtitle_band",
                 "technical_quality", "quality_label", "camera_motion", "motion_mean", "duration_s",
                 "width", "height", "safety_reason", "provenance_reason", "watermark_reason")


class ReviewAuthError(RuntimeError):
    """The page would be reachable by others without a login."""


@dataclass(frozen=True)
class Login:
    users: Mapping[str, str] = field(default_factory=dict)  # name -> password (basic auth)
    tokens: Mapping[str, str] = field(default_factory=dict)  # secret -> name
    local_user: str | None = None  # loopback without credentials

    def reviewer(self, request: Request) -> str | None:
        if self.local_user:
            return self.local_user
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            expected = self.users.get(name)
            return name if expected is not None and _same(expected, password) else None
        secret = value if scheme.lower() == "bearer" else (
            request.cookies.get(COOKIE) or request.query_params.get("token") or "")
        return next((n for s, n in self.tokens.items() if _same(s, secret)), None)


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison (bytes: compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def login_from_env(host: str, env: Mapping[str, str] = os.environ) -> Login:
    users = dict(p.split(":", 1) for p in env.get("VCURATE_REVIEW_USERS", "").split(",") if ":" in p)
    token = env.get("VCURATE_REVIEW_TOKEN", "")
    name, _, secret = token.partition(":") if ":" in token else ("token", "", token)
    tokens = {secret: name} if secret else {}
    if users or tokens:
        return Login(users, tokens)
    if host not in LOOPBACK:
        raise ReviewAuthError(f"vcurate review bound to {host}: set VCURATE_REVIEW_TOKEN (name:secret) or "
                              "VCURATE_REVIEW_USERS (name:password,...) so only reviewers can decide")
    return Login(local_user=getpass.getuser())


class ReviewData:
    """What the page reads from lakeFS, cached per main commit; previews cached on disk."""

    def __init__(self, lakefs: LakeFSResource, cache_dir: Path, source_file: Callable[[dict], Path]):
        self.lakefs, self.cache_dir, self.source_file = lakefs, cache_dir, source_file
        self._head, self._queue, self._lock = "", {}, threading.Lock()

    @property
    def head(self) -> str:
        """The main commit the page shows."""
        return self._head

    def queue(self) -> dict[str, dict]:
        head = self.lakefs.head()
        with self._lock:
            if head != self._head:
                self._queue = {f"{r['source']}/{r['clip_id']}": r for r in review_queue(self.lakefs, head)}
                self._head = head
            return self._queue

    def media(self, row: dict) -> tuple[bytes | None, Path | None]:
        """A stage sample's MP4 or the clip's own file from lakeFS, else a preview encoded once."""
        for stage in STAGES:
            manifest = self.lakefs.read_table(tier_path(row["source"], stage), ref=self._head)
            for r in manifest.to_pylist() if manifest is not None else []:
                if r["clip_id"] == row["clip_id"]:
                    return self.lakefs.read_bytes(r["media_path"], ref=self._head), None
        clips = self.lakefs.read_table(tier_path(row["source"], "clips"), ref=self._head)
        for r in clips.to_pylist() if clips is not None else []:
            if r["clip_id"] == row["clip_id"] and r.get("clip_file_path"):
                return self.lakefs.read_bytes(r["clip_file_path"], ref=self._head), None
        name = f"{row['clip_id']}-{row['start_s']:.3f}-{row['end_s']:.3f}.mp4"
        out = preview_cache_dir(self.cache_dir, row["video_id"]) / name
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            encode_preview(self.source_file(row), row["start_s"], row["end_s"], out)
        return None, out


def create_app(data: ReviewData, login: Login) -> Starlette:
    def guarded(handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            reviewer = login.reviewer(request)
            if reviewer is None:
                return Response("login required", 401, {"WWW-Authenticate": 'Basic realm="vcurate review"'}
                                if login.users else None)
            response = await handler(request, reviewer)
            token = request.query_params.get("token")
            if token and token in login.tokens:  # keep the token out of later URLs
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return endpoint

    async def page(request: Request, reviewer: str) -> Response:
        return HTMLResponse(PAGE.read_text())

    async def queue(request: Request, reviewer: str) -> Response:
        clips = [{"key": key, "clip_id": r["clip_id"], "source": r["source"], "video_id": r["video_id"],
                  "reason": r["queue_reason"], "review_reason": r["review_reason"],
                  "route_reasons": r["route_reasons"], "keyframes": len(r["keyframes"] or []),
                  "signals": {k: r[k] for k in SHOWN_SIGNALS}} for key, r in data.queue().items()]
        return JSONResponse({"reviewer": reviewer, "head": data.head, "clips": clips})

    def _row(request: Request) -> dict | None:
        return data.queue().get(f"{request.path_params['source']}/{request.path_params['clip_id']}")

    async def media(request: Request, reviewer: str) -> Response:
        row = _row(request)
        if row is None:
            return Response("not waiting for review", 404)
        body, path = data.media(row)
        return FileResponse(path, media_type="video/mp4") if path else Response(body, media_type="video/mp4")

    async def keyframe(request: Request, reviewer: str) -> Response:
        row = _row(request)
        keys = (row or {}).get("keyframes") or []
        index = int(request.path_params["index"])
        if not 0 <= index < len(keys):
            return Response("no such keyframe", 404)
        return Response(data.lakefs.read_bytes(keys[index]["path"], ref=data.head), media_type="image/jpeg")

    async def decide(request: Request, reviewer: str) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return JSONResponse({"error": "send JSON"}, 415)  # a cross-site form cannot
        body = await request.json()
        try:
            decisions = [Decision(d["clip_id"], d["decision"], str(d.get("reason", "")))
                         for d in body["decisions"]]
            commit = record_decisions(data.lakefs, body["source"], decisions, reviewer)
        except (ReviewError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"commit": commit, "recorded": len(decisions), "reviewer": reviewer})

    return Starlette(routes=[
        Route("/", guarded(page)),
        Route("/api/queue", guarded(queue)),
        Route("/api/decisions", guarded(decide), methods=["POST"]),
        Route("/media/{source}/{clip_id}.mp4", guarded(media)),
        Route("/keyframe/{source}/{clip_id}/{index:int}.jpg", guarded(keyframe)),
    ])


def source_files(sources: SourceRegistryResource) -> Callable[[dict], Path]:
    """A scored row's source video as a local file (S3 objects fetched once into the cache)."""
    def find(row: dict) -> Path:
        return sources.local_path(sources.load(), row["uri"], row["sha256"])
    return find


def sources_from_env(env: Mapping[str, str] = os.environ) -> SourceRegistryResource:
    return SourceRegistryResource(
        path=env["VCURATE_SOURCES"], cache_dir=env.get("VCURATE_CACHE_DIR", ".vcurate/cache"),
        s3=S3Resource(endpoint_url=env.get("VCURATE_S3_ENDPOINT_URL"),
                      aws_access_key_id=env.get("VCURATE_S3_ACCESS_KEY_ID"),
                      aws_secret_access_key=env.get("VCURATE_S3_SECRET_ACCESS_KEY"),
                      region_name=env.get("VCURATE_S3_REGION")))

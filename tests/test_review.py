"""Review decisions (issue 19): data in lakeFS, honoured by scored, picked up by the stages, purged
with their video; and the review page's login rule. Real lakeFS, real Dagster runs, real videos."""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
import yaml
from dagster import build_sensor_context, materialize

from assets.common.layout import classify, preview_cache_dir, reviews_path, tier_path
from assets.upkeep.optout import purge_optout
from assets.upkeep.reviews import Decision, ReviewError, record_decisions, review_queue
from assets.upkeep.rollback import rollback_partition
from orchestration import cli
from orchestration.dev.lakefs_server import free_port
from orchestration.review_app import (
    Login,
    ReviewAuthError,
    ReviewData,
    create_app,
    login_from_env,
    source_files,
)
from orchestration.sensors import review_decisions_sensor
from quality_checks.policy import Policy
from quality_checks.routing.reviews import latest_decisions, review_inputs, signals_fingerprint
from quality_checks.routing.scored import govern
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.test_optout import EVERYTHING, POLICY, films_source

# Every clip of the CC0 source waits for review; stage_256p takes human-approved clips only.
REVIEWED = POLICY.replace("licenses:\n  allowed: [CC0-1.0]\n",
                          "licenses:\n  allowed: [CC0-1.0]\n  review: [CC0-1.0, CC-BY-4.0]\n") + (
    "stages:\n  stage_256p:\n    require_review: true\n")


def _row(**values: object) -> dict:
    base = {"nsfw_max": 0.3, "license": "CC0-1.0", "watermark_score": 0.0, "text_ratio_max": 0.0,
            "text_box_max_fraction": 0.0, "subtitle_band": False, "technical_quality": 0.8,
            "aesthetic": None, "duplicate_of": None, "clip_id": "c1"}
    return {**base, **values}


def _governed(row: dict, decision: dict | None, policy: Policy) -> dict:
    row = {**row, **review_inputs(decision, signals_fingerprint(row, ("nsfw_max", "license")))}
    return {**row, **govern(row, policy)}


def test_decisions_route_and_expire_when_signals_change():
    policy = Policy.model_validate({"licenses": {"allowed": ["CC0-1.0"]},
                                    "scored": {"safety": {"review_at": 0.2, "block_at": 0.8}}})
    row = _row()
    assert govern(row, policy)["route"] == "review"
    fp = signals_fingerprint(row, ("nsfw_max", "license"))
    approve = {"decision": "approved", "reason": "a dancer, not nudity", "signals_fingerprint": fp}
    approved = _governed(row, approve, policy)
    assert (approved["route"], approved["review_status"], approved["safety_label"]) == (
        "train", "approved", "safe")
    assert "approved in review" in approved["safety_reason"] and approved["weight"] > 0
    assert govern(approved, policy) == {k: approved[k] for k in govern(approved, policy)}  # audit replays it
    rejected = _governed(row, {**approve, "decision": "rejected", "reason": "explicit"}, policy)
    assert (rejected["route"], rejected["review_status"]) == ("dropped", "rejected")
    assert rejected["route_reasons"] == ["rejected in review: explicit"]
    changed = _governed(_row(nsfw_max=0.31), approve, policy)  # signals moved since the decision
    assert (changed["route"], changed["review_status"]) == ("review", "needs_review")
    blocked = _governed(_row(nsfw_max=0.9), {**approve, "signals_fingerprint": signals_fingerprint(
        _row(nsfw_max=0.9), ("nsfw_max", "license"))}, policy)
    assert blocked["route"] == "blocked"  # an approval never lifts a block
    log = [{"clip_id": "c1", "decision": "approved", "decided_at": 1},
           {"clip_id": "c1", "decision": "rejected", "decided_at": 2}]
    assert latest_decisions(log)["c1"]["decision"] == "rejected"
    assert classify(reviews_path("s")).kind == "review_table"


def _materialize(pipeline: Pipeline, registry: Path, selection: list):
    result = materialize(EVERYTHING, partition_key="films", selection=selection,
                         resources=pipeline.resources(registry), instance=pipeline.instance)
    assert result.success
    for check in result.get_asset_check_evaluations():
        assert check.passed or not check.blocking, (check.check_name, check.metadata)
    return result


def _scored(pipeline: Pipeline) -> dict[str, dict]:
    return {r["clip_id"]: r for r in pipeline.lakefs.read_table(tier_path("films", "scored")).to_pylist()}


def test_review_decisions_end_to_end(pipeline: Pipeline, workdir: Path):
    registry = films_source(pipeline, workdir, REVIEWED)
    lakefs = pipeline.lakefs
    pipeline.run(registry, "films")
    result = _materialize(pipeline, registry, EVERYTHING[1:3])  # clips, scored
    meta = materialization_metadata_for(result, "scored")
    queue = review_queue(lakefs)
    assert queue and meta["review_queue"] == len(queue) and "licence" in meta["review_queue_by_reason"]
    bikes = [r["clip_id"] for r in queue if r["uri"].endswith("bikes.mp4")]
    gradient = [r["clip_id"] for r in queue if r["uri"].endswith("gradient.mp4")]
    assert bikes and gradient

    with pytest.raises(ReviewError):
        record_decisions(lakefs, "films", [Decision(gradient[0], "rejected", " ")], "ana")
    # bo rejects through the review page; the name comes from his login, not from the request
    login = login_from_env("0.0.0.0", {"VCURATE_REVIEW_USERS": "bo:hunter2,cy:pw"})
    data = ReviewData(lakefs, workdir / "cache", source_files(pipeline.resources(registry)["sources"]))
    bo = ("bo", "hunter2")
    with serve(create_app(data, login)) as url:
        assert _get(f"{url}/api/queue")[0] == 401
        for clip in (gradient[0], bikes[0]):
            status, body = _get(f"{url}/media/films/{clip}.mp4", auth=bo)
            assert status == 200 and body[4:8] == b"ftyp"  # an MP4 encoded on demand from the span
        assert _get(f"{url}/keyframe/films/{gradient[0]}/0.jpg", auth=bo)[1][:2] == b"\xff\xd8"
        status, body = _post(f"{url}/api/decisions", {"source": "films", "reviewer": "mallory", "decisions": [
            {"clip_id": c, "decision": "rejected", "reason": "not ours to use"} for c in gradient]}, auth=bo)
        assert status == 200 and json.loads(body)["reviewer"] == "bo"
    rejected_at = json.loads(body)["commit"]
    # ana approves a batch by mistake, rolls it back (one commit per batch), and approves again
    wrong = record_decisions(lakefs, "films", [Decision(c, "approved", "oops") for c in bikes], "ana")
    assert wrong != rejected_at and lakefs.repo().commit(wrong).get_commit().metadata["reviewer"] == "ana"
    rollback_partition(lakefs, "reviews", "films", rejected_at, "ana", "approved the wrong batch", "r" * 32)
    path = reviews_path("films")
    assert lakefs.read_bytes(path) == lakefs.read_bytes(path, ref=rejected_at)
    record_decisions(lakefs, "films", [Decision(c, "approved", "terms checked") for c in bikes], "ana")
    assert review_queue(lakefs) == []  # decided on these signals: out of the queue until they change
    reviews = latest_decisions(lakefs.read_table(reviews_path("films")).to_pylist()).values()
    assert {(r["clip_id"], r["decision"], r["reviewer"]) for r in reviews} == {
        *((c, "approved", "ana") for c in bikes), *((c, "rejected", "bo") for c in gradient)}

    # the sensor asks for scored and what follows, for the source whose decisions changed
    with build_sensor_context(instance=pipeline.instance, resources={"lakefs": lakefs}) as ctx:
        sensed = review_decisions_sensor(ctx)
        assert [r.partition_key for r in sensed.run_requests] == ["films"]
        ctx.update_cursor(sensed.cursor)
        assert not getattr(review_decisions_sensor(ctx), "run_requests", None)  # nothing new since

    result = _materialize(pipeline, registry, EVERYTHING[2:-1])  # scored, captioned, stages
    rows = _scored(pipeline)
    assert all((rows[c]["review_status"], rows[c]["route"]) == ("approved", "train") for c in bikes)
    assert all((rows[c]["review_status"], rows[c]["route"]) == ("rejected", "dropped") for c in gradient)
    assert rows[gradient[0]]["route_reasons"] == ["rejected in review: not ours to use"]
    assert materialization_metadata_for(result, "scored")["review_queue"] == 0
    stage = {r["clip_id"] for r in lakefs.read_table(tier_path("films", "stage_256p")).to_pylist()}
    assert stage and stage <= set(bikes)  # require_review: only approved clips

    # the licence changes under the decision: what the reviewer saw no longer holds
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC-BY-4.0"}])
    pipeline.run(registry, "films")
    _materialize(pipeline, registry, EVERYTHING[1:3])
    rows = _scored(pipeline)
    assert {rows[c]["review_status"] for c in bikes + gradient} == {"needs_review"}

    # the purge takes a video's decisions with it
    video = rows[bikes[0]]["video_id"]
    (workdir / "optout.yaml").write_text(yaml.safe_dump({"videos": [{
        "uri": "videos/bikes.mp4", "source": "films", "reason": "creator request",
        "requested_at": "2026-12-03", "requested_by": "trust@lab"}]}))
    resources = pipeline.resources(registry)
    assert purge_optout.execute_in_process(instance=pipeline.instance, resources={
        k: resources[k] for k in ("lakefs", "optouts", "sources")}).success
    left = lakefs.read_table(reviews_path("films")).to_pylist()
    assert left and not any(r["video_id"] == video for r in left)
    assert not preview_cache_dir(workdir / "cache", video).exists()  # its previews went with it
    assert preview_cache_dir(workdir / "cache", rows[gradient[0]]["video_id"]).exists()


def test_review_page_needs_a_login_off_loopback(lakefs_resource, tmp_path: Path, monkeypatch,
                                                capsys: pytest.CaptureFixture[str]):
    with pytest.raises(ReviewAuthError):
        login_from_env("0.0.0.0", {})
    for name in ("VCURATE_REVIEW_USERS", "VCURATE_REVIEW_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # the handler, not main(): main applies the project's .env to this process
    assert cli._review(argparse.Namespace(host="0.0.0.0", port=3100)) == 2  # refuses to start
    assert "VCURATE_REVIEW_TOKEN" in capsys.readouterr().err
    assert login_from_env("127.0.0.1", {}).local_user  # loopback: the local OS user
    token = login_from_env("0.0.0.0", {"VCURATE_REVIEW_TOKEN": "ana:s3cret"})
    assert token.tokens == {"s3cret": "ana"} and token.local_user is None
    data = ReviewData(lakefs_resource, tmp_path, lambda row: tmp_path)
    with serve(create_app(data, token)) as url:
        assert _get(f"{url}/")[0] == 401
        assert _get(f"{url}/api/queue", headers={"Authorization": "Bearer wrong"})[0] == 401
        status, body = _get(f"{url}/api/queue", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and json.loads(body)["reviewer"] == "ana" and json.loads(body)["clips"] == []
        form = _post(f"{url}/api/decisions", b"source=x", headers={"Authorization": "Bearer s3cret"})
        assert form[0] == 415  # only JSON: a cross-site form post cannot decide
    with serve(create_app(data, Login(users={"bo": "pw"}))) as url:
        assert _get(f"{url}/api/queue", auth=("bo", "nope"))[0] == 401
        assert _get(f"{url}/api/queue", auth=("bo", "pässwört"))[0] == 401
        assert json.loads(_get(f"{url}/api/queue", auth=("bo", "pw"))[1])["reviewer"] == "bo"


@contextmanager
def serve(app) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _request(req: urllib.request.Request, auth: tuple[str, str] | None) -> tuple[int, bytes]:
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _get(url: str, auth: tuple[str, str] | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    return _request(urllib.request.Request(url, headers=headers or {}), auth)


def _post(url: str, body: dict | bytes, auth: tuple[str, str] | None = None,
          headers: dict | None = None) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    form = isinstance(body, bytes)
    kind = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
    return _request(urllib.request.Request(url, data=data, headers={**kind, **(headers or {})}), auth)


def materialization_metadata_for(result, asset: str) -> dict[str, object]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return materialization_metadata(type("R", (), {"get_asset_materialization_events": lambda _: events})())

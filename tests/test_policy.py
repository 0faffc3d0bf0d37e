"""Policy validation: a bad policy fails fast with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from media.decode.probe import VideoProbe
from media.shots.analysis import AnalysisParams
from media.shots.spans import SpanParams
from quality_checks.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from resources.config_files import ConfigError


def _policy(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _file_vs_code(model: BaseModel, data: dict, where: str) -> list[str]:
    """Every field of `model` (code defaults) against the same key of the parsed YAML."""
    problems = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name not in data:
            problems.append(f"{where}{name}: not in default_policy.yaml")
        elif isinstance(value, BaseModel):
            problems += _file_vs_code(value, data[name], f"{where}{name}.")
        else:  # parsed as the model parses it (so 10800 and 10800.0, or YAML merge keys, agree)
            stated = getattr(type(model).model_validate({**model.model_dump(), name: data[name]}), name)
            if stated != value:
                problems.append(f"{where}{name}: file {data[name]!r}, code {value!r}")
    problems += [f"{where}{key}: not a policy field" for key in data if key not in type(model).model_fields]
    return problems


def test_default_policy_file_states_every_code_default():
    """The YAML lists every policy field, and each value is the code's default: a partial
    policy file and the packaged one can never disagree on a value neither states."""
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    assert _file_vs_code(Policy(), data, "") == []
    assert load_policy() == Policy()


def test_clip_defaults_are_the_analysis_code_defaults():
    """policy.clips takes its defaults from media's parameter classes (written once)."""
    clips, spans, analysis = Policy().clips, SpanParams(), AnalysisParams()
    for name in ("min_clip_s", "max_clip_s", "trim_frames", "spike_motion", "spike_delta",
                 "stitch_below_motion"):
        assert getattr(clips, name) == getattr(spans, name), name
    assert clips.analysis_params() == AnalysisParams(
        detector=analysis.detector, analysis_short_side=analysis.analysis_short_side,
        keyframe_short_side=analysis.keyframe_short_side, camera_frame_step=analysis.camera_frame_step,
        cut_files=analysis.cut_files, spans=SpanParams(**{
            **spans.__dict__, "spike_window": spans.spike_window}))


def test_default_policy_loads_and_hash_tracks_values(tmp_path: Path):
    default = load_policy()
    assert default.raw_pool.min_short_side == 144
    changed = load_policy(_policy(tmp_path, {"raw_pool": {"min_short_side": 240}}))
    assert changed.hash != default.hash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"raw_pool": {"min_fsp": 3}}, "policy.yaml: raw_pool.min_fsp: unknown key"),
        ({"raw_pool": {"min_fps": "fast"}}, "policy.yaml: raw_pool.min_fps: Input should be"),
        ({"raw_pool": {"max_reject_rate": 2}}, "policy.yaml: raw_pool.max_reject_rate: Input "
                                               "should be less than or equal to 1"),
        ({"raw_pool": {"min_duration_s": 9, "max_duration_s": 3}},
         "min_duration_s (9.0) is above max_duration_s (3.0)"),
    ],
)
def test_bad_policy_names_the_field(tmp_path: Path, data: dict, message: str):
    with pytest.raises(ConfigError) as error:
        load_policy(_policy(tmp_path, data))
    assert message in str(error.value)


def test_prefilters_cite_the_policy_field():
    rules = load_policy().raw_pool
    ok = VideoProbe(width=640, height=360, fps=25, duration_s=5, bitrate=1_000_000)
    assert rules.reject_reason(ok) is None
    portrait = VideoProbe(width=1920, height=1080, rotation=90, fps=30, duration_s=5,
                          bitrate=5_000_000)
    assert rules.reject_reason(portrait) is None  # 1080x1920 after rotation: aspect 0.56
    cases = {
        "too_short": VideoProbe(width=640, height=360, fps=25, duration_s=0.5, bitrate=10**6),
        "fps_out_of_range": VideoProbe(width=640, height=360, fps=2, duration_s=5, bitrate=10**6),
        "aspect_out_of_range": VideoProbe(width=4000, height=200, fps=25, duration_s=5,
                                          bitrate=10**7),
        "low_bpp": VideoProbe(width=640, height=360, fps=25, duration_s=5, bitrate=1000),
    }
    for code, probe in cases.items():
        reason = rules.reject_reason(probe)
        assert reason is not None and reason[0] == code
        assert "policy.raw_pool." in reason[1]


def test_frozen_clips_are_left_out_of_every_stage_and_the_drawn_guard_is_on_by_default():
    policy = load_policy()
    for stage in ("stage_256p", "stage_480p", "stage_720p", "sft"):
        assert "frozen" not in policy.stages.stage(stage).motion_labels
    assert policy.scored.safety.drawn_guard and policy.scored.safety.drawn_at == 0.5
    assert policy.scored.motion.frozen_below > 0 and policy.scored.motion.frozen_camera_speed > 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": {"stage_256p": {"motion_labels": []}}}, "motion_labels needs at least one"),
        ({"stages": {"stage_256p": {"motion_labels": ["still"]}}}, "stages.stage_256p.motion_labels"),
        ({"scored": {"safety": {"drawn_at": 2}}}, "scored.safety.drawn_at"),
    ],
)
def test_bad_motion_and_safety_fields_name_the_field(tmp_path: Path, data: dict, message: str):
    with pytest.raises(ConfigError) as error:
        load_policy(_policy(tmp_path, data))
    assert message in str(error.value)

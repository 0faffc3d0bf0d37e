"""clips end to end and its media parts, on constructed footage with known cuts."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from dagster import materialize
from PIL import Image
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

from assets.clips.asset import clips
from assets.clips.rows import rows_for_video
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from media.decode.frames import decode_analysis_frames, shrink_by_whole_factors
from media.decode.probe import probe_video_file
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.shots.detectors import FastAdaptiveDetector, FastContentDetector
from media.shots.dissolves import DissolveDetector
from media.shots.median import median
from media.shots.spans import SpanParams
from quality_checks import clips as clips_checks
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.video_factory import (
    write_cut_video,
    write_dissolve_video,
    write_rotated_video,
    write_static_video,
    write_vfr_video,
)


def test_known_hard_cuts_are_found_within_two_frames(tmp_path: Path):
    path, cuts = write_cut_video(tmp_path / "cuts.mp4", segment_seconds=(3.0, 2.5, 3.5), fps=24)
    analysis = analyze_video_decoding_once(path, AnalysisParams())
    assert len(analysis.cuts) == len(cuts)
    for expected, found in zip(cuts, analysis.cuts, strict=True):
        assert abs(found - expected) <= 2
    # trimmed shots, one clip each, never spanning a cut
    assert len(analysis.clips) == 3
    bounds = [0, *cuts, analysis.frame_count]
    for clip, (a, b) in zip(analysis.clips, zip(bounds, bounds[1:], strict=False), strict=True):
        assert a <= clip.start < clip.end <= b


def test_ten_bit_source_analyses_like_eight_bit(tmp_path: Path):
    # 10-bit (HDR cameras, HEVC Main10) takes FFmpeg's converter, not the 8-bit plane path.
    seconds = (2.0, 2.5, 2.0)
    eight, cuts = write_cut_video(tmp_path / "8.mp4", segment_seconds=seconds)
    ten, _ = write_cut_video(tmp_path / "10.mkv", segment_seconds=seconds, pix_fmt="yuv420p10le")
    with av.open(str(ten)) as container:
        assert next(container.decode(video=0)).format.name == "yuv420p10le"
    a, b = (analyze_video_decoding_once(p, AnalysisParams()) for p in (eight, ten))
    assert a.cuts == b.cuts and len(b.cuts) == len(cuts)
    assert [(c.start, c.end) for c in a.clips] == [(c.start, c.end) for c in b.clips]
    # The same scale and the same shrinking: 10-bit rounds to 8-bit within a grey level.
    assert np.abs(a.stats["luma_mean"] - b.stats["luma_mean"]).max() < 1.0
    assert np.abs(a.stats["sharpness"] - b.stats["sharpness"]).max() < 0.1 * a.stats["sharpness"].mean()
    assert set(b.keyframe_jpegs) == set(a.keyframe_jpegs)


def test_dissolve_is_found_and_kept_out_of_clips(tmp_path: Path):
    path, (start, end) = write_dissolve_video(tmp_path / "d.mp4", seconds=3.0, blend=16)
    analysis = analyze_video_decoding_once(path, AnalysisParams())
    assert len(analysis.transitions) == 1 and analysis.cuts == []
    found = analysis.transitions[0]
    assert found[0] <= (start + end) // 2 < found[1]
    assert found[1] - found[0] <= 2 * (end - start)
    assert len(analysis.clips) == 2
    for clip in analysis.clips:  # no clip holds a blended frame
        assert clip.end <= start or clip.start >= end


def test_clip_rows_name_the_dissolve_that_bounds_their_shot(tmp_path: Path):
    path, (start, end) = write_dissolve_video(tmp_path / "d.mp4", seconds=3.0, blend=16)
    params = AnalysisParams()
    analysis = analyze_video_decoding_once(path, params)
    video = {"video_id": "v1", "sha256": "0" * 64, "uri": "videos/d.mp4"}
    rows, _ = rows_for_video("src", video, analysis, params, "commit")
    (s0, e0), = [t for t in analysis.transitions]
    assert [(r["shot_start_boundary"], r["shot_end_boundary"]) for r in rows] == [
        ("video_start", "transition"), ("transition", "video_end")]
    assert rows[0]["shot_end_frame"] == s0 and rows[1]["shot_start_frame"] == e0
    assert rows[1]["start_frame"] >= e0  # the clip after it starts at or after its first clean frame


def test_static_video_has_no_motion(tmp_path: Path):
    analysis = analyze_video_decoding_once(write_static_video(tmp_path / "s.mp4", seconds=3),
                                           AnalysisParams())
    assert analysis.stats["motion"].max() < 0.005
    assert len(analysis.clips) == 1 and analysis.clip_stats(analysis.clips[0])["motion_mean"] < 0.005


def test_moving_video_has_motion_and_long_shots_split(tmp_path: Path):
    path, _ = write_cut_video(tmp_path / "m.mp4", segment_seconds=(9.0,), fps=24)  # one moving shot
    params = AnalysisParams(spans=SpanParams(min_clip_s=1.0, max_clip_s=4.0))
    analysis = analyze_video_decoding_once(path, params)
    assert analysis.stats["motion"][1:].mean() > 0.003  # the static video scores 0
    durations = [c.end_s - c.start_s for c in analysis.clips]
    assert len(durations) == 3 and all(d <= 4.0 + 1 / 24 for d in durations)
    assert all(c.end <= n.start for c, n in zip(analysis.clips, analysis.clips[1:], strict=False))


def test_vfr_clip_times_follow_timestamps(tmp_path: Path):
    path = write_vfr_video(tmp_path / "v.mp4", frames=96)
    analysis = analyze_video_decoding_once(
        path, AnalysisParams(spans=SpanParams(trim_frames=0, min_clip_s=0.5)))
    starts = analysis.stats["seconds"]
    expected = np.cumsum([0] + [0.033 if i % 2 == 0 else 0.067 for i in range(95)])
    assert np.allclose(starts, expected, atol=0.002)
    clip = analysis.clips[0]
    assert clip.start_s == pytest.approx(starts[clip.start])


def test_shot_detector_scores_and_cuts_match_pyscenedetects_own(tmp_path: Path):
    """Our faster content score drives PySceneDetect's detectors to exactly their own results."""
    path, _ = write_cut_video(tmp_path / "cuts.mp4", segment_seconds=(2.0, 1.5, 2.0), fps=24)
    frames = [f.bgr for f in decode_analysis_frames(path, 144)]
    for ours, theirs in ((FastAdaptiveDetector(), AdaptiveDetector()),
                         (FastContentDetector(), ContentDetector())):
        found: dict[str, list[int]] = {"ours": [], "theirs": []}
        for index, bgr in enumerate(frames):
            for name, detector in (("ours", ours), ("theirs", theirs)):
                cuts = detector.process_frame(FrameTimecode(index, fps=24.0), bgr)
                found[name] += [tc.frame_num for tc in cuts]
            assert ours._frame_score == pytest.approx(theirs._frame_score, abs=1e-9)
        assert found["ours"] == found["theirs"] and len(found["ours"]) == 2


def test_dissolve_detector_survives_a_size_change_mid_stream():
    detector = DissolveDetector()
    rng = np.random.default_rng(0)
    for index in range(60):
        size = (120, 90) if index < 30 else (160, 120)
        detector.feed(index, rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    assert detector.finish() == []  # noise is no dissolve, and no window spans the change


@pytest.mark.parametrize("count", [1, 2, 5, 6, 101])
def test_median_is_numpys(count: int):
    # Keyframe choice and spike re-clipping compare against it: equal to the last bit.
    rng = np.random.default_rng(count)
    for values in (rng.random(count) * 1e3, rng.integers(0, 4, count).astype(float)):
        assert median(values) == float(np.median(values))
    with pytest.raises(ValueError, match="empty"):
        median(np.array([]))


@pytest.mark.parametrize(("fx", "fy"), [(2, 2), (4, 4), (3, 3), (8, 8), (4, 2)])
def test_whole_factor_shrink_averages_cells(fx: int, fy: int):
    rng = np.random.default_rng(fx * 10 + fy)
    image = cv2.GaussianBlur(rng.integers(0, 256, (181, 243, 3), dtype=np.uint8), (5, 5), 0)
    small = shrink_by_whole_factors(image, fx, fy)
    height, width = 181 // fy, 243 // fx
    assert small.shape == (height, width, 3)
    cells = image[: height * fy, : width * fx].reshape(height, fy, width, fx, 3).mean(axis=(1, 3))
    steps, x, y = 0, fx, fy  # halvings, then one resize for what is left: each rounds half a level
    while x % 2 == 0 and y % 2 == 0:
        steps, x, y = steps + 1, x // 2, y // 2
    assert np.abs(small - cells).max() <= 0.5 * (steps + ((x, y) != (1, 1)))


def test_rotated_video_keeps_display_size_and_upright_keyframes(tmp_path: Path):
    analysis = analyze_video_decoding_once(write_rotated_video(tmp_path / "r.mp4"),
                                           AnalysisParams(spans=SpanParams(min_clip_s=1.0)))
    assert (analysis.width, analysis.height) == (240, 320)
    jpeg = next(iter(analysis.keyframe_jpegs.values()))
    assert Image.open(io.BytesIO(jpeg)).size == (240, 320)  # upright portrait, never upscaled


def test_clips_asset_publishes_clips_keyframes_and_contact_sheets(pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    write_static_video(workdir / "videos" / "static.mp4", seconds=3)
    registry = write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
    ])
    pipeline.run(registry, "cams")
    raw_head = pipeline.lakefs.head()
    result = materialize([raw_pool, clips], partition_key="cams",
                         resources=pipeline.resources(registry), instance=pipeline.instance,
                         selection=[clips])
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {spec.name: True for spec in clips_checks.clips_check_specs()} | {
        "clips_no_opted_out_lineage": True}

    table = pipeline.lakefs.read_table(tier_path("cams", "clips"))
    rows = table.to_pylist()
    assert len(rows) == 3  # two shots + the static video
    # each row says which shot it came from and what bounds it: the cut, or the video's ends
    bounds = sorted((r["uri"].rsplit("/", 1)[-1], r["shot_start_boundary"], r["shot_end_boundary"])
                    for r in rows)
    assert bounds == [("cuts.mp4", "cut", "video_end"), ("cuts.mp4", "video_start", "cut"),
                      ("static.mp4", "video_start", "video_end")]
    for row in rows:
        assert row["shot_start_frame"] <= row["start_frame"] < row["end_frame"] <= row["shot_end_frame"]
    merge = pipeline.lakefs.log(max_amount=1)[0]
    assert merge.metadata["upstream_commits"] == f'{{"raw_pool": "{raw_head}"}}'
    assert all(r["upstream_commit"] == raw_head for r in rows)
    for row in rows:
        assert {k["role"] for k in row["keyframes"]} == {"start", "middle", "motion_peak", "end"}
        for keyframe in row["keyframes"]:
            image = Image.open(io.BytesIO(pipeline.lakefs.read_bytes(keyframe["path"])))
            assert min(image.size) == 240  # captioning size never upscales a 240p source
        sheet = pipeline.lakefs.read_bytes(row["contact_sheet_path"])
        assert sheet[:8] == b"\x89PNG\r\n\x1a\n"
        stats = pipeline.lakefs.read_table(row["frame_stats_path"])
        assert stats.num_rows == row["video_frame_count"]

    # Unchanged inputs: nothing is analysed again and nothing is published.
    again = materialize([raw_pool, clips], partition_key="cams",
                        resources=pipeline.resources(registry), instance=pipeline.instance,
                        selection=[clips])
    meta = materialization_metadata(again)
    assert meta["videos_unchanged"] == 2 and meta["videos_analysed"] == 0
    assert meta["published"] is False


def test_cut_files_hold_exactly_the_clip_frames(pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    write_rotated_video(workdir / "videos" / "phone.mp4")
    registry = write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
    ])
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text("clips:\n  cut_files: true\n  min_clip_s: 1.0\n")
    pipeline.run(registry, "cams")
    result = materialize([raw_pool, clips], partition_key="cams",
                         resources=pipeline.resources(registry), instance=pipeline.instance,
                         selection=[clips])
    assert result.success
    rows = pipeline.lakefs.read_table(tier_path("cams", "clips")).to_pylist()
    assert rows and all(r["clip_file_path"] for r in rows)
    for row in rows:
        local = workdir / f"{row['clip_id']}.mp4"
        local.write_bytes(pipeline.lakefs.read_bytes(row["clip_file_path"]))
        probe = probe_video_file(local)
        assert probe.error is None
        assert probe.frame_count == row["end_frame"] - row["start_frame"]
        assert (probe.display_width, probe.display_height) == (row["width"], row["height"])
        assert probe.duration_s == pytest.approx(row["duration_s"], abs=0.05)


def test_parameter_change_reanalyses_and_leaves_no_orphan_objects(pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
    ])
    pipeline.run(registry, "cams")

    def run_clips() -> dict:
        result = materialize([raw_pool, clips], partition_key="cams", selection=[clips],
                             resources=pipeline.resources(registry), instance=pipeline.instance)
        return materialization_metadata(result)

    run_clips()
    before = pipeline.lakefs.read_table(tier_path("cams", "clips")).to_pylist()
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text("clips:\n  trim_frames: 8\n")
    meta = run_clips()
    assert meta["videos_analysed"] == 1 and meta["published"] is True
    # a link to the folder of contact sheets in lakeFS, never a picture or a video's id (the
    # event log cannot be purged)
    sheets = meta["contact_sheets"]
    assert "/objects?ref=" in sheets and "contact_sheets/" in sheets
    assert "data:image" not in sheets and not re.search(r"v[0-9a-f]{32}", sheets)
    assert "data:image/png;base64" in meta["duration_histogram"]
    after = pipeline.lakefs.read_table(tier_path("cams", "clips")).to_pylist()
    assert [r["start_frame"] for r in after] == [r["start_frame"] + 6 for r in before]

    referenced = {k["path"] for r in after for k in r["keyframes"]}
    referenced |= {r["frame_stats_path"] for r in after} | {r["contact_sheet_path"] for r in after}
    stored = {obj.path for obj in pipeline.lakefs.repo().ref("main").objects(
        prefix="sources/cams/clips/")}
    assert stored == referenced  # every stored object is cited, nothing stale is left

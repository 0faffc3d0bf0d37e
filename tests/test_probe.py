"""The PyAV probe on real files: what containers claim versus what they hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.decode.hashing import sha256_file, video_id_for
from media.decode.probe import probe_video_file
from tests.video_factory import (
    write_bad_inputs,
    write_broken_duration_video,
    write_rotated_video,
    write_vfr_video,
    write_video,
)


def test_constant_rate_video_with_audio(tmp_path: Path):
    probe = probe_video_file(write_video(tmp_path / "a.mp4", seconds=2, fps=25, audio=True))
    assert probe.error is None
    assert (probe.width, probe.height, probe.frame_count) == (320, 240, 50)
    assert probe.fps == pytest.approx(25) and probe.duration_s == pytest.approx(2.0)
    assert probe.has_audio and probe.audio_codec == "aac" and not probe.vfr
    assert probe.codec == "h264" and probe.pix_fmt == "yuv420p" and probe.bitrate > 0


def test_bad_inputs_become_reasons_not_exceptions(tmp_path: Path):
    expected = write_bad_inputs(tmp_path)
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    expected["gone.mp4"] = "unreadable"
    for name, reason in expected.items():
        probe = probe_video_file(tmp_path / name)
        assert probe.error == reason, (name, probe.error_detail)
        assert probe.error_detail


def test_broken_container_duration_uses_measured_frames(tmp_path: Path):
    probe = probe_video_file(write_broken_duration_video(tmp_path / "b.mp4", seconds=3))
    assert probe.error is None
    assert probe.container_duration_s is not None and probe.container_duration_s < 0.01
    assert probe.duration_s == pytest.approx(3.0, abs=0.05) and probe.frame_count == 72
    assert probe.bits_per_pixel < 1  # bitrate from packets, not from the broken header
    assert any("container duration" in note for note in probe.notes)


def test_variable_frame_rate_is_detected(tmp_path: Path):
    probe = probe_video_file(write_vfr_video(tmp_path / "v.mp4", frames=48))
    assert probe.vfr and probe.frame_count == 48
    # 24 intervals of 33 ms and 23 of 67 ms, plus the last frame's duration
    assert probe.duration_s == pytest.approx((24 * 33 + 23 * 67 + 67) / 1000, abs=0.08)


def test_rotation_swaps_display_size(tmp_path: Path):
    probe = probe_video_file(write_rotated_video(tmp_path / "r.mp4"))
    assert probe.rotation in (90, 270)
    assert (probe.display_width, probe.display_height) == (240, 320)


def test_video_id_is_content_addressed(tmp_path: Path):
    a = write_video(tmp_path / "a.mp4", seed=1)
    b = tmp_path / "renamed.bin"
    b.write_bytes(a.read_bytes())
    assert video_id_for(sha256_file(a)) == video_id_for(sha256_file(b))
    c = write_video(tmp_path / "c.mp4", seed=2)
    assert video_id_for(sha256_file(a)) != video_id_for(sha256_file(c))

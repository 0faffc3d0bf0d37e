"""Stage buckets: aspect names, stage resolutions and VAE-friendly frame counts."""

from __future__ import annotations

import pytest

from media.export.buckets import (
    ASPECT_BUCKETS,
    BucketParams,
    aspect_bucket,
    crop_box,
    frame_bucket,
    frames_available,
    plan_stage,
    stage_size,
)


@pytest.mark.parametrize(("width", "height", "bucket"), [
    (1920, 1080, "16:9"), (1080, 1920, "9:16"), (640, 480, "4:3"), (720, 720, "1:1"),
    (480, 640, "3:4"), (1280, 720, "16:9"), (720, 576, "5:4"), (2560, 1080, "21:9"),
    (1080, 2560, "9:21"), (3000, 2000, "3:2"), (640, 272, "21:9"), (400, 300, "4:3"),
])
def test_common_sizes_get_the_nearest_bucket(width: int, height: int, bucket: str):
    assert aspect_bucket(width, height) == bucket


def test_bucket_choice_can_be_restricted_to_the_stage_buckets():
    assert aspect_bucket(720, 576, ["1:1", "4:3", "16:9"]) == "4:3"
    assert aspect_bucket(640, 272, ["1:1", "16:9", "9:16"]) == "16:9"
    with pytest.raises(ValueError, match="unknown buckets"):
        aspect_bucket(640, 480, ["4:3", "7:5"])


@pytest.mark.parametrize(("width", "height", "short", "expected"), [
    (1920, 1080, 256, (448, 256)), (1920, 1080, 480, (848, 480)), (1920, 1080, 720, (1280, 720)),
    (1080, 1920, 480, (480, 848)), (640, 480, 480, (640, 480)), (720, 720, 256, (256, 256)),
])
def test_stage_size_of_common_sources(width: int, height: int, short: int, expected: tuple[int, int]):
    assert stage_size(width, height, short, aspect_bucket(width, height)) == expected


@pytest.mark.parametrize("multiple", [16, 8, 2])
@pytest.mark.parametrize("short", [256, 480, 720])
@pytest.mark.parametrize(("width", "height"), [
    (1920, 1080), (1080, 1920), (1280, 720), (640, 480), (720, 576), (2560, 1080), (854, 480),
    (1000, 1000), (3840, 1600), (481, 481), (1440, 1080), (960, 540),
])
def test_stage_size_never_upscales_and_keeps_the_bucket_aspect(width: int, height: int, short: int,
                                                                multiple: int):
    bucket = aspect_bucket(width, height)
    size = stage_size(width, height, short, bucket, multiple)
    aspect = ASPECT_BUCKETS[bucket]
    crop_w, crop_h = (min(width, height * aspect), min(height, width / aspect))
    if min(crop_w, crop_h) < short:
        assert size is None
        return
    assert size is not None
    out_w, out_h = size
    assert out_w % multiple == 0 and out_h % multiple == 0
    assert min(out_w, out_h) == short // multiple * multiple
    assert out_w <= crop_w and out_h <= crop_h  # never upscaled
    # within one rounding step of the long side
    assert abs(out_w / out_h - aspect) <= multiple / min(out_w, out_h)


def test_a_source_below_the_stage_is_not_eligible():
    assert stage_size(640, 360, 480, "16:9") is None
    assert stage_size(1280, 720, 720, "16:9") == (1280, 720)
    # 4:3 crop of 1280x720 is 960x720: fits 720p; a 3:4 crop of it (405x720) does not
    assert stage_size(1280, 720, 720, "4:3") == (960, 720)
    assert stage_size(1280, 720, 720, "3:4") is None


@pytest.mark.parametrize(("source", "out"), [
    ((1920, 1080), (848, 480)), ((640, 480), (448, 256)), ((1000, 700), (368, 256)),
    ((1080, 1920), (480, 848)), ((720, 720), (256, 256)), ((1441, 1081), (1440, 1072)),
])
def test_crop_box_is_centred_even_and_at_the_output_aspect(source: tuple[int, int], out: tuple[int, int]):
    source_w, source_h = source
    x, y, w, h = crop_box(source_w, source_h, *out)
    assert x % 2 == 0 and y % 2 == 0 and w % 2 == 0 and h % 2 == 0
    assert x >= 0 and y >= 0 and x + w <= source_w and y + h <= source_h
    assert abs(2 * x + w - source_w) <= 3 and abs(2 * y + h - source_h) <= 3  # centred
    assert w / h == pytest.approx(out[0] / out[1], rel=0.01)
    assert w >= source_w - 3 or h >= source_h - 3  # the largest such crop


@pytest.mark.parametrize(("seconds", "fps", "rule", "max_frames", "expected"), [
    (2.0, 24, "any", None, 48),
    (2.0, 24, "4k+1", None, 45),
    (2.0, 24, "8k+1", None, 41),
    (5.4, 24, "4k+1", 129, 129),
    (3.4, 24, "4k+1", 129, 81),  # 81.6 frames: exactly the Wan 81
    (3.0, 16, "4k+1", 129, 45),
    (10.0, 24, "4k+1", 121, 121),
    (10.0, 24, "8k+1", 120, 113),
    (1.0 / 3, 24, "4k+1", None, 5),
])
def test_frame_bucket_is_the_largest_allowed_count(seconds, fps, rule, max_frames, expected):
    assert frame_bucket(seconds, fps, rule, max_frames) == expected


def test_frame_bucket_counts_frames_inside_the_clip():
    # 20 frames at 30 fps last 2/3 s: 16 output times at 24 fps fall inside (the 17th is its end)
    assert frames_available(20 / 30, 24) == 16
    assert frames_available(0.1 + 0.2 + 0.7, 24) == 24  # float sums do not lose a frame
    for seconds in (0.5, 1.0, 2.7, 5.0):
        for rule, step in (("4k+1", 4), ("8k+1", 8)):
            count = frame_bucket(seconds, 24, rule)
            assert (count - 1) % step == 0 and count <= seconds * 24 < count + step


def test_frame_bucket_is_zero_for_clips_too_short_for_the_minimum():
    assert frame_bucket(0.6, 24, "4k+1", min_frames=17) == 0  # 14 frames: 13 fits 4k+1
    assert frame_bucket(0.7, 24, "4k+1", min_frames=17) == 0  # 16.8 frames
    assert frame_bucket(17 / 24, 24, "4k+1", min_frames=17) == 17
    assert frame_bucket(0.0, 24) == 0
    assert frame_bucket(None, 24) == 0
    with pytest.raises(ValueError, match="rule"):
        frame_bucket(2.0, 24, "5k+1")


def test_plan_stage_combines_bucket_size_crop_and_frames():
    params = BucketParams(short_side=480, fps=24.0, frame_rule="4k+1", min_frames=17, max_frames=129)
    plan = plan_stage(1920, 1080, 4.0, params)
    assert plan.skip is None
    assert (plan.bucket, plan.width, plan.height, plan.frames) == ("16:9", 848, 480, 93)
    assert plan.duration_s == pytest.approx(93 / 24)
    assert plan.crop == crop_box(1920, 1080, 848, 480)
    assert plan_stage(640, 360, 4.0, params).skip == "too_small"
    assert plan_stage(1920, 1080, 0.5, params).skip == "too_short"

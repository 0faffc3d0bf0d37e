"""Real video files for tests, encoded with PyAV: good ones and every kind of bad one."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _frame(i: int, width: int, height: int) -> np.ndarray:
    """A moving gradient with a bouncing square, so encoders see real motion."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 0] = (x * 255 // max(width - 1, 1) + i * 3) % 256
    img[..., 1] = (y * 255 // max(height - 1, 1)) % 256
    img[..., 2] = (i * 7) % 256
    s = max(min(width, height) // 5, 2)
    cx = (i * 5) % max(width - s, 1)
    cy = (i * 3) % max(height - s, 1)
    img[cy : cy + s, cx : cx + s] = 255
    return img


def write_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 24,
    width: int = 320,
    height: int = 240,
    codec: str = "libx264",
    faststart: bool = False,
    audio: bool = False,
    seed: int = 0,
) -> Path:
    """Encode a constant-frame-rate video; `seed` shifts the content so files differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        a_stream = out.add_stream("aac", rate=44100) if audio else None
        n = int(round(seconds * fps))
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_frame(i + seed * 17, width, height), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if a_stream is not None:
            _write_tone(out, a_stream, seconds)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w") as out:
        _write_tone(out, out.add_stream("aac", rate=44100), seconds)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                seconds: float) -> None:
    rate, block = 44100, 1024
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, len(samples), block):
        chunk = samples[start : start + block]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def write_vfr_video(path: Path, frames: int = 48, width: int = 320, height: int = 240) -> Path:
    """Frame intervals alternate between 1/30 s and 1/15 s: a genuinely variable rate."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_scene_frame(i, 0, width, height), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 33 if i % 2 == 0 else 67
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def write_broken_duration_video(path: Path, seconds: float = 3.0) -> Path:
    """An MP4 whose movie and track headers claim a duration of one tick."""
    write_video(path, seconds=seconds, codec="mpeg4")
    data = bytearray(path.read_bytes())
    for box, duration_offset in ((b"mvhd", 16), (b"mdhd", 16), (b"tkhd", 20)):
        at = data.find(box)
        while at != -1:
            if data[at + 4] == 0:  # version 0: 32-bit fields
                struct.pack_into(">I", data, at + 4 + duration_offset, 1)
            at = data.find(box, at + 4)
    path.write_bytes(bytes(data))
    return path


def write_truncated_video(path: Path) -> Path:
    """A faststart MP4 cut at 40 %: the header is intact, most frames are gone."""
    write_video(path, seconds=3.0, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.4)])
    return path


def write_bad_inputs(directory: Path) -> dict[str, str]:
    """Every kind of bad input the raw tier must turn into a row; maps file name to reason."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "empty.mp4").write_bytes(b"")
    write_truncated_video(directory / "truncated.mp4")
    rng = np.random.default_rng(7)
    (directory / "random.mp4").write_bytes(rng.integers(0, 256, 64_000, dtype=np.uint8).tobytes())
    (directory / "notes.txt").write_text("this is a text file, not a video\n" * 20)
    write_audio_only(directory / "audio_only.m4a")
    return {
        "empty.mp4": "empty_file",
        "truncated.mp4": "truncated",
        "random.mp4": "unreadable",
        "notes.txt": "not_a_video",
        "audio_only.m4a": "no_video_stream",
    }


def write_rotated_video(path: Path, degrees: int = 90) -> Path:
    """A phone-style landscape encode with a display-rotation matrix (shown as portrait)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.set_display_rotation(degrees)
        for i in range(48):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_frame(i, 320, 240), format="rgb24")))
        out.mux(stream.encode())
    return path


def _scene_frame(i: int, scene: int, width: int, height: int) -> np.ndarray:
    """Visibly different scenes: each has its own palette and pattern, with gentle motion."""
    y, x = np.mgrid[0:height, 0:width]
    palettes = [(40, 120, 220), (220, 60, 40), (50, 200, 90), (230, 210, 60), (150, 60, 200)]
    base = np.array(palettes[scene % len(palettes)], dtype=np.int32)
    step = 4 * i  # pixels per frame: clearly visible motion at analysis size
    pattern = [(x + step) // 16 % 2, (y + step) // 16 % 2, ((x + y + step) // 24) % 2,
               ((x // 20 + y // 20) % 2), (np.hypot(x - width / 2, y - height / 2) // 18 % 2)]
    mask = pattern[scene % len(pattern)].astype(np.int32)[..., None]
    img = base[None, None, :] * (0.55 + 0.45 * mask)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_cut_video(path: Path, segment_seconds: tuple[float, ...] = (3.0, 3.0), fps: int = 24,
                    width: int = 320, height: int = 240, first_scene: int = 0,
                    pix_fmt: str = "yuv420p") -> tuple[Path, list[int]]:
    """Scenes joined by hard cuts; returns the first frame index of every scene after the first."""
    cuts, index = [], 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for scene, seconds in enumerate(segment_seconds):
            if scene:
                cuts.append(index)
            for i in range(int(round(seconds * fps))):
                img = _scene_frame(i, first_scene + scene, width, height)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
                index += 1
        out.mux(stream.encode())
    return path, cuts


def write_static_video(path: Path, seconds: float = 3.0, fps: int = 24) -> Path:
    """A locked-off shot: the same picture every frame."""
    img = _scene_frame(0, 3, 320, 240)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(int(seconds * fps)):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def write_dissolve_video(path: Path, seconds: float = 3.0, blend: int = 16, fps: int = 24
                         ) -> tuple[Path, tuple[int, int]]:
    """Two scenes cross-dissolved over `blend` frames; returns the blended frames' span."""
    n = int(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        frames = [_scene_frame(i, 0, 320, 240) for i in range(n)]
        frames += [_scene_frame(i, 4, 320, 240) for i in range(n)]
        start = n - blend // 2
        for k in range(blend):
            alpha = (k + 1) / (blend + 1)
            a, b = _scene_frame(start + k, 0, 320, 240), _scene_frame(k, 4, 320, 240)
            frames[start + k] = ((1 - alpha) * a + alpha * b).round().astype(np.uint8)
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path, (start, start + blend)


def write_transformed_copy(src: Path, dst: Path, *, scale: float = 1.0,
                           subtitle: str | None = None) -> Path:
    """Re-encode `src` (H.264), optionally rescaled and with a burned-in subtitle line:
    a near-duplicate that shares no bytes with the original."""
    import cv2

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        stream = None
        for frame in inp.decode(video):
            rgb = frame.to_ndarray(format="rgb24")
            if scale != 1.0:
                h, w = rgb.shape[:2]
                rgb = cv2.resize(rgb, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2),
                                 interpolation=cv2.INTER_AREA)
            if subtitle:
                h, w = rgb.shape[:2]
                size = h / 400
                (tw, th), _ = cv2.getTextSize(subtitle, cv2.FONT_HERSHEY_DUPLEX, size, 2)
                org = ((w - tw) // 2, int(h * 0.9))
                cv2.putText(rgb, subtitle, org, cv2.FONT_HERSHEY_DUPLEX, size, (0, 0, 0), 6, cv2.LINE_AA)
                cv2.putText(rgb, subtitle, org, cv2.FONT_HERSHEY_DUPLEX, size, (255, 255, 255), 2,
                            cv2.LINE_AA)
            if stream is None:
                stream = out.add_stream("libx264", rate=video.average_rate or 25)
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = "yuv420p"
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        out.mux(stream.encode())
    return dst


def write_frames_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Encode RGB frames as they are (H.264, near-lossless, so repeats stay repeats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(stream.encode())
    return path


def scene_frames(scene: int, count: int, width: int = 320, height: int = 240, speed: int = 1,
                 first: int = 0) -> list[np.ndarray]:
    """`count` frames of one moving scene (as in `write_cut_video`); `speed` frames of motion
    per frame (4 moves as far in one frame as 1 does in four)."""
    return [_scene_frame(first + i * speed, scene, width, height) for i in range(count)]


def repeated(frames: list[np.ndarray], pattern: tuple[int, ...] = (2,)) -> list[np.ndarray]:
    """Frame-rate conversion: each picture shown `pattern[k % len(pattern)]` times (2: 12.5 fps
    doubled to 25; (3, 2): 3:2 pulldown)."""
    return [img for k, img in enumerate(frames) for _ in range(pattern[k % len(pattern)])]


def flashed(frames: list[np.ndarray], at: int, length: int = 2, strength: float = 0.8) -> list[np.ndarray]:
    """`length` frames from `at` blended towards white: a flash inside the shot."""
    out = list(frames)
    for k in range(at, at + length):
        out[k] = (out[k] * (1 - strength) + 255 * strength).round().astype(np.uint8)
    return out


def relit(frames: list[np.ndarray], at: int, length: int, gain: float) -> list[np.ndarray]:
    """A slow light change: brightness ramps by `gain` over `length` frames from `at`, then stays."""
    out = []
    for k, img in enumerate(frames):
        g = 1 + (gain - 1) * min(1.0, max(0.0, (k - at) / length))
        out.append(np.clip(img * g, 0, 255).round().astype(np.uint8))
    return out


SKIN = ((233, 180, 150), (250, 200, 170), (210, 150, 120), (240, 170, 160), (200, 120, 100), (255, 210, 190))


def flat_cartoon(seed: int) -> np.ndarray:
    """A flat-coloured drawing (skin-toned fills, dark outlines) after a JPEG round trip, as a
    keyframe decodes: what OpenNSFW misreads (tests/test_safety.py, bench/safety.py)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((360, 640, 3), np.uint8)
    img[:] = SKIN[rng.integers(len(SKIN))]
    for _ in range(rng.integers(2, 8)):
        colour = (tuple(int(v) for v in SKIN[rng.integers(len(SKIN))]) if rng.random() < 0.7
                  else tuple(int(v) for v in rng.integers(0, 255, 3)))
        centre = (int(rng.integers(0, 640)), int(rng.integers(0, 360)))
        axes, angle = (int(rng.integers(30, 200)), int(rng.integers(30, 150))), float(rng.uniform(0, 180))
        cv2.ellipse(img, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(img, centre, axes, angle, 0, 360, (60, 30, 20), 3, cv2.LINE_AA)
    _, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)

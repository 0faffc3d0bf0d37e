"""Benchmark: throughput of our single-pass analysis against raw decode and a multi-pass pipeline.

    uv run python bench/throughput.py [VIDEO_OR_DIR ...] [--limit N] [--max-seconds S] [--repeat N]

Default input: every video in `.vcurate/footage` (fetch it with
`bash ../shared/footage/fetch.sh .vcurate/footage all`), else in `/tmp/footage`.

On the same files, in the same run, it measures wall time (frames/s and realtime factor =
video seconds / wall seconds) and peak RSS of:

  analysis    our pass: `media.shots.analysis.analyze_video_decoding_once` (one decode feeding
              shot detection with PySceneDetect's AdaptiveDetector, per-frame stats and
              keyframe JPEGs), default parameters: a video of 800 frames or more runs as
              time segments on one process per CPU (media/shots/segments.py); the pool starts
              before the clock, like the imports; its CPU and memory are counted as ours
  one-proc    the same with segments off (`segment_workers=1`): one process per video
  ffmpeg      raw decode, the physical limit: `ffmpeg -threads 0 -i X -map 0:v:0 -f null -`
              (installed with apt-get when missing; falls back to the PyAV loop below)
  pyav        raw decode in Python: `for f in container.decode(video=0): pass`, threaded
  sd-cli      the PySceneDetect CLI: `scenedetect -i X -q detect-adaptive`
  multi-pass  how peers chain tools: sd-cli + an OpenCV motion pass (every frame, grey,
              256 px wide, frame difference) + an OpenCV frame-extraction pass (one frame
              every 0.25 s, resized to our keyframe size, JPEG-encoded); time = sum of passes

Every approach runs in its own child process, so its peak RSS (from `os.wait4`) is its own.
Python approaches time only their work (interpreter start and imports are paid once per
pipeline process, not per video); CLIs are timed as invoked. CLI start-up is measured
separately and the summary also gives ratios with it removed. Frames/s of every approach
use the analysis pass's frame count, so all rates refer to the same frames. The summary
is also written as JSON to `.vcurate/bench/throughput.json`. On a shared machine a single
run of one file can be slowed by a neighbour: `--repeat 3` keeps each approach's median.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `bench.footage` imports even where the project is not installed
    sys.path.append(str(ROOT))
from bench.footage import FETCH_HINT, find_footage, footage_dirs, list_videos  # noqa: E402

DEFAULT_DIRS = footage_dirs(ROOT)
JSON_OUT = ROOT / ".vcurate" / "bench" / "throughput.json"
CHILD_TIMEOUT_S = 600
EXTRACT_EVERY_S = 0.25  # peers' extraction rate; our analysis samples keyframes at 4/s too
MOTION_WIDTH = 256
KEYFRAME_SHORT_SIDE = 384  # AnalysisParams.keyframe_short_side: both sides encode equal pixels
APPROACHES = ("analysis", "one-proc", "ffmpeg", "pyav", "sd-cli", "multi-pass")
PASSES = ("sd-cli", "cv2-motion", "cv2-extract")  # the multi-pass pipeline, in order


# ---------------------------------------------------------------- workers (child processes)
# Each returns (frames seen, video seconds when it knows them). Imports live inside the
# workers so that each child loads only what its approach needs: its peak RSS stays its own.

def _work_analysis(path: Path) -> tuple[int, float | None]:
    from media.shots.analysis import AnalysisParams, analyze_video_decoding_once

    analysis = analyze_video_decoding_once(path, AnalysisParams())
    # fps is count / presentation span, so this is the span the pipeline itself reports.
    return analysis.frame_count, analysis.frame_count / analysis.fps


def _work_analysis_one_process(path: Path) -> tuple[int, float | None]:
    from media.shots.analysis import AnalysisParams, analyze_video_decoding_once

    analysis = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1))
    return analysis.frame_count, analysis.frame_count / analysis.fps


def _work_pyav(path: Path) -> tuple[int, float | None]:
    import av

    count = 0
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for _ in container.decode(video=0):
            count += 1
    return count, None


def _work_cv2_motion(path: Path) -> tuple[int, float | None]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    previous, scores = None, []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        height = max(1, round(grey.shape[0] * MOTION_WIDTH / grey.shape[1]))
        small = cv2.resize(grey, (MOTION_WIDTH, height), interpolation=cv2.INTER_AREA)
        # Like ours, the first frame scores 0.
        scores.append(float(cv2.absdiff(small, previous).mean()) if previous is not None else 0.0)
        previous = small
    cap.release()
    return len(scores), None


def _work_cv2_extract(path: Path) -> tuple[int, float | None]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    every = max(1, round((cap.get(cv2.CAP_PROP_FPS) or 25.0) * EXTRACT_EVERY_S))
    count = 0
    # Sequential grab() beats seeking with CAP_PROP_POS_FRAMES at 4 frames/s: every seek
    # decodes again from the previous keyframe. Only kept frames pay for retrieve().
    while cap.grab():
        if count % every == 0:
            ok, frame = cap.retrieve()
            if ok:
                scale = KEYFRAME_SHORT_SIDE / min(frame.shape[:2])
                if scale < 1:
                    size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        count += 1
    cap.release()
    return count, None


WORKERS: dict[str, Callable[[Path], tuple[int, float | None]]] = {
    "analysis": _work_analysis,
    "one-proc": _work_analysis_one_process,
    "pyav": _work_pyav,
    "cv2-motion": _work_cv2_motion,
    "cv2-extract": _work_cv2_extract,
}


# What each worker imports before its clock starts: imports are start-up, not work.
PRELOAD = {"analysis": ("media.shots.analysis",), "one-proc": ("media.shots.analysis",), "pyav": ("av",),
           "cv2-motion": ("cv2",), "cv2-extract": ("cv2",)}


def _start_analysis_workers() -> None:
    # The clips tier starts its segment processes once per pipeline process, like its imports.
    from media.shots.analysis import start_segment_workers

    start_segment_workers()


START = {"analysis": _start_analysis_workers}


def worker_main(name: str, path: str) -> None:
    """Child-process entry: run one approach on one file, print its work time as JSON."""
    import importlib

    sys.path.insert(0, str(ROOT))  # `media` imports even where the project is not installed
    for module in PRELOAD[name]:
        importlib.import_module(module)
    if name in START:
        START[name]()
    start = time.perf_counter()
    frames, video_s = WORKERS[name](Path(path))
    seconds = time.perf_counter() - start
    helper_cpu_s, helper_rss_mb = descendant_usage()
    print(json.dumps({"seconds": seconds, "frames": frames, "video_s": video_s,
                      "helper_cpu_s": helper_cpu_s, "helper_rss_mb": helper_rss_mb}))


def descendant_usage() -> tuple[float, float]:
    """(CPU s, summed peak RSS MB) of this process's live descendants: the analysis's segment
    workers, which wait4 on the worker does not see (Linux only; (0, 0) elsewhere)."""
    try:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return 0.0, 0.0
    family, cpu_ticks, rss_kb = {os.getpid()}, 0, 0
    grew = True
    while grew:
        grew = False
        for pid, (ppid, ticks) in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
                cpu_ticks += ticks
                with contextlib.suppress(OSError, ValueError, StopIteration):
                    status = Path(f"/proc/{pid}/status").read_text().splitlines()
                    rss_kb += int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    return cpu_ticks / os.sysconf("SC_CLK_TCK"), rss_kb / 1024


# ---------------------------------------------------------------- measuring children

@dataclass
class Measured:
    """One approach on one file. `seconds` is None when it failed (see `error`)."""

    seconds: float | None
    peak_rss_mb: float
    frames: int | None = None
    error: str | None = None
    video_s: float | None = None


def run_child(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int, str, str]:
    """Run `cmd`; return (wall s, peak RSS MB, exit code, stdout, stderr) of that child alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        killer = threading.Timer(CHILD_TIMEOUT_S, proc.kill)
        killer.start()
        # wait4 (not RUSAGE_CHILDREN, a max over all children so far) gives this child's peak.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_maxrss / 1024, proc.returncode,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def _failure(code: int, stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"exit {code}: {lines[-1][:160] if lines else 'no message'}"


def measure_worker(name: str, path: Path) -> Measured:
    wall, rss, code, stdout, stderr = run_child([sys.executable, __file__, "--worker", name, str(path)],
                                                cwd=ROOT)
    if code != 0:
        return Measured(None, rss, error=_failure(code, stderr))
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return Measured(None, rss, error=f"unreadable worker output: {stdout[-160:]!r}")
    global HELPER_CPU_S
    HELPER_CPU_S += result.get("helper_cpu_s", 0.0)
    return Measured(result["seconds"], rss + result.get("helper_rss_mb", 0.0), frames=result["frames"],
                    video_s=result["video_s"])


def measure_cli(cmd: list[str], cwd: Path | None = None) -> Measured:
    wall, rss, code, _, stderr = run_child(cmd, cwd=cwd)
    return Measured(wall if code == 0 else None, rss, error=None if code == 0 else _failure(code, stderr))


def ffmpeg_cmd(ffmpeg: str, path: Path) -> list[str]:
    # Only the first video stream (the one our analysis decodes): decoding audio is no
    # part of the video-decode limit, and leaving it in would flatter our ratio.
    return [ffmpeg, "-v", "error", "-nostdin", "-threads", "0", "-i", str(path),
            "-map", "0:v:0", "-f", "null", "-"]


def scenedetect_cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "scenedetect", "-i", str(path), "-q", "detect-adaptive"]


def startup_seconds(cmd: list[str], cwd: Path) -> float:
    """Median wall time of a no-work invocation: what a CLI pays per file before decoding."""
    return statistics.median(run_child(cmd, cwd=cwd)[0] for _ in range(5))


# ---------------------------------------------------------------- setup

def find_ffmpeg(allow_install: bool) -> str | None:
    """The ffmpeg binary; when missing, try `apt-get install ffmpeg` (needs root and network)."""
    found = shutil.which("ffmpeg")
    if found or not allow_install or shutil.which("apt-get") is None:
        return found
    print("ffmpeg is not on PATH: trying `apt-get update && apt-get install -y ffmpeg` ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "ffmpeg"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"  {' '.join(cmd[:2])} failed: {exc}")
            return None
        if done.returncode != 0:
            print(f"  {' '.join(cmd[:2])} failed: {_failure(done.returncode, done.stderr)}")
            return None
    return shutil.which("ffmpeg")


def find_videos(inputs: list[str]) -> list[Path]:
    if not inputs:
        folder = find_footage(root=ROOT)
        if folder is None:
            print(f"no footage in {' or '.join(map(str, DEFAULT_DIRS))}; fetch it from the project root:\n"
                  f"  {FETCH_HINT}", file=sys.stderr)
            sys.exit(1)
        inputs = [str(folder)]
    files: list[Path] = []
    for item in map(Path, inputs):
        files += list_videos(item) if item.is_dir() else [item]
    return [p for p in files if p.is_file()]


def container_seconds(path: Path) -> float | None:
    """The container's duration claim (no decoding), for --max-seconds; None if unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return container.duration / 1e6 if container.duration else None
    except (av.FFmpegError, IndexError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU s the whole machine spent busy, CPU s this process and its children used); Linux only."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    own = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    # user, nice, system, irq, softirq: not idle, iowait or steal.
    busy = sum(ticks[:3]) + ticks[5] + ticks[6]
    return busy / os.sysconf("SC_CLK_TCK"), sum(u.ru_utime + u.ru_stime for u in own) + HELPER_CPU_S


HELPER_CPU_S = 0.0  # CPU of the workers' own child processes (segment pools), which rusage misses


def other_load(before: tuple[float, float] | None, wall_s: float) -> float | None:
    """Share of all CPUs that other processes used since `before` (they slow every figure)."""
    after = cpu_seconds()
    if before is None or after is None or wall_s <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others) / (wall_s * (os.cpu_count() or 1))


def versions(ffmpeg: str | None) -> dict[str, str]:
    import av
    import cv2
    import scenedetect

    found = {"python": platform.python_version(), "av": av.__version__, "opencv": cv2.__version__,
             "scenedetect": scenedetect.__version__, "cpus": str(os.cpu_count())}
    if ffmpeg:
        found["ffmpeg"] = subprocess.run([ffmpeg, "-version"], capture_output=True,
                                         text=True).stdout.split("\n")[0]
    return found


# ---------------------------------------------------------------- one file

@dataclass
class FileResult:
    file: str
    frames: int = 0
    video_s: float = 0.0
    runs: dict[str, Measured] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.frames > 0 and all(self.runs.get(a) and self.runs[a].seconds for a in APPROACHES)

    def fps(self, approach: str) -> float | None:
        run = self.runs.get(approach)
        return self.frames / run.seconds if run and run.seconds and self.frames else None


def median_run(runs: list[Measured]) -> Measured:
    """The run of median time (the first failure, if any run failed)."""
    failed = [run for run in runs if run.seconds is None]
    return failed[0] if failed else sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def bench_file(path: Path, ffmpeg: str | None, scratch: Path, repeat: int = 1) -> FileResult:
    result = FileResult(path.name)

    def measure(run: Callable[[], Measured]) -> Measured:
        return median_run([run() for _ in range(repeat)])

    pyav = measure(lambda: measure_worker("pyav", path))  # first: also warms the page cache
    result.runs["pyav"] = pyav
    if pyav.seconds is None or not pyav.frames:
        result.notes.append(f"skipped: PyAV cannot decode it ({pyav.error or 'no frames'})")
        return result
    result.runs["ffmpeg"] = measure(lambda: measure_cli(ffmpeg_cmd(ffmpeg, path))) if ffmpeg else pyav
    analysis = result.runs["analysis"] = measure(lambda: measure_worker("analysis", path))
    result.runs["one-proc"] = measure(lambda: measure_worker("one-proc", path))
    result.frames = analysis.frames or pyav.frames
    result.video_s = analysis.video_s or 0.0
    # cwd = a scratch folder: the CLI must not leave files in the project tree.
    result.runs["sd-cli"] = measure(lambda: measure_cli(scenedetect_cmd(path), cwd=scratch))
    result.runs["cv2-motion"] = measure(lambda: measure_worker("cv2-motion", path))
    result.runs["cv2-extract"] = measure(lambda: measure_worker("cv2-extract", path))
    passes = [result.runs[name] for name in PASSES]
    failed = any(p.seconds is None for p in passes)
    # The passes run one after another, so the pipeline's peak is the largest pass's peak.
    result.runs["multi-pass"] = Measured(None if failed else sum(p.seconds or 0.0 for p in passes),
                                         max(p.peak_rss_mb for p in passes))
    for name, run in result.runs.items():
        if run.error and not (name == "ffmpeg" and run is pyav):
            result.notes.append(f"{name} failed: {run.error}")
    if analysis.frames and analysis.frames != pyav.frames:
        result.notes.append(f"frame counts differ: analysis {analysis.frames}, PyAV {pyav.frames}")
    return result


# ---------------------------------------------------------------- summary

def _geomean(values: list[float]) -> float | None:
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def summarize(done: list[FileResult], startup: dict[str, float]) -> dict[str, object]:
    """Totals per approach and the headline ratios, over the files every approach handled."""
    frames = sum(r.frames for r in done)
    video = sum(r.video_s for r in done)
    seconds = {a: sum(r.runs[a].seconds or 0.0 for r in done) for a in (*APPROACHES, *PASSES)}
    approaches = {a: {"seconds": round(seconds[a], 3),
                      "fps": round(frames / seconds[a], 1),
                      "realtime_x": round(video / seconds[a], 2),
                      "peak_rss_mb": round(max(r.runs[a].peak_rss_mb for r in done), 1)}
                  for a in (*APPROACHES, *PASSES)}
    n = len(done)
    # Start-up removed: what the CLIs' engines cost, without a process launch per file.
    net = {"ffmpeg": seconds["ffmpeg"] - n * startup.get("ffmpeg", 0.0),
           "sd-cli": seconds["sd-cli"] - n * startup["scenedetect"],
           "multi-pass": seconds["multi-pass"] - n * startup["scenedetect"]}
    ours = seconds["analysis"]

    def per_file(other: str) -> float | None:
        return _geomean([(r.runs[other].seconds or 0.0) / (r.runs["analysis"].seconds or 1.0) for r in done])

    ratios = {
        "analysis_over_raw_decode": seconds["ffmpeg"] / ours,
        "analysis_over_raw_decode_startup_removed": net["ffmpeg"] / ours,
        "one_process_over_raw_decode": seconds["ffmpeg"] / seconds["one-proc"],
        "analysis_over_pyav_decode": seconds["pyav"] / ours,
        "speedup_vs_multi_pass": seconds["multi-pass"] / ours,
        "speedup_vs_multi_pass_startup_removed": net["multi-pass"] / ours,
        "speedup_vs_scenedetect_cli": seconds["sd-cli"] / ours,
        "speedup_vs_scenedetect_cli_startup_removed": net["sd-cli"] / ours,
        "per_file_geomean_analysis_over_raw_decode": per_file("ffmpeg"),
        "per_file_geomean_speedup_vs_multi_pass": per_file("multi-pass"),
        "per_file_geomean_speedup_vs_scenedetect_cli": per_file("sd-cli"),
    }
    return {"files": n, "frames": frames, "video_s": round(video, 2), "approaches": approaches,
            "ratios": {k: round(v, 3) for k, v in ratios.items() if v is not None}}


def _cell(value: float | None) -> str:
    return f"{value:9.0f}" if value is not None else f"{'-':>9}"


def print_header(raw_label: str) -> None:
    print(f"\nframes/s of each approach (raw decode = {raw_label}; multi = sd-cli + 2 OpenCV passes)")
    names = " ".join(f"{a.replace('multi-pass', 'multi'):>9}" for a in APPROACHES)
    print(f"{'file':44} {'frames':>6} {'video s':>7} {names}")


def print_row(result: FileResult) -> None:
    cells = " ".join(_cell(result.fps(a)) for a in APPROACHES)
    print(f"{result.file[:44]:44} {result.frames:6d} {result.video_s:7.1f} {cells}", flush=True)
    for note in result.notes:
        print(f"{'':6}note: {note}")


def print_summary(summary: dict[str, object], raw_label: str, startup: dict[str, float]) -> None:
    approaches: dict[str, dict[str, float]] = summary["approaches"]  # type: ignore[assignment]
    ratios: dict[str, float] = summary["ratios"]  # type: ignore[assignment]
    print(f"\nSummary over {summary['files']} files: {summary['frames']} frames, "
          f"{summary['video_s']} s of video")
    print(f"{'approach':12} {'total s':>9} {'frames/s':>9} {'realtime x':>10} {'peak RSS MB':>12}")
    notes = {"ffmpeg": f"raw decode ({raw_label})", "pyav": "raw decode, PyAV loop",
             "one-proc": "our pass, segments off (one process)", "sd-cli": "multi-pass pass 1",
             "cv2-motion": "multi-pass pass 2",
             "cv2-extract": "multi-pass pass 3", "multi-pass": "sum of passes 1-3"}
    for name in ("analysis", "one-proc", "ffmpeg", "pyav", *PASSES, "multi-pass"):
        row = approaches[name]
        print(f"{name:12} {row['seconds']:9.2f} {row['fps']:9.1f} {row['realtime_x']:10.2f} "
              f"{row['peak_rss_mb']:12.1f}   {notes.get(name, '')}")
    print("CLI start-up per file (median of 5 no-work runs): "
          + ", ".join(f"{k} {v:.3f} s" for k, v in startup.items()))

    def line(text: str, key: str, target: float | None = None) -> None:
        verdict = ""
        if target is not None:
            verdict = f"   target >= {target}: {'MET' if ratios[key] >= target else 'MISSED'}"
        print(f"  {text:58} {ratios[key]:6.2f}{verdict}")

    print("\nRatios (time-weighted over all frames)")
    line(f"analysis / raw decode ({raw_label}) throughput", "analysis_over_raw_decode", 0.6)
    if "ffmpeg" in startup:
        line("  same, ffmpeg start-up removed", "analysis_over_raw_decode_startup_removed", 0.6)
    line("  same, segments off (one process per video)", "one_process_over_raw_decode")
    line("analysis / PyAV decode-only throughput", "analysis_over_pyav_decode")
    line("analysis vs multi-pass speed-up", "speedup_vs_multi_pass", 2.0)
    line("  same, scenedetect CLI start-up removed", "speedup_vs_multi_pass_startup_removed", 2.0)
    line("analysis vs PySceneDetect CLI speed-up", "speedup_vs_scenedetect_cli")
    line("  same, scenedetect CLI start-up removed", "speedup_vs_scenedetect_cli_startup_removed")
    print("Per-file geometric means (every file weighs the same)")
    line(f"analysis / raw decode ({raw_label}) throughput", "per_file_geomean_analysis_over_raw_decode")
    line("analysis vs multi-pass speed-up", "per_file_geomean_speedup_vs_multi_pass")
    line("analysis vs PySceneDetect CLI speed-up", "per_file_geomean_speedup_vs_scenedetect_cli")


def file_record(result: FileResult) -> dict[str, object]:
    runs = {name: {k: v for k, v in asdict(run).items() if v is not None} | {"fps": result.fps(name)}
            for name, run in result.runs.items()}
    return {"file": result.file, "frames": result.frames, "video_s": round(result.video_s, 3),
            "complete": result.complete, "runs": runs, "notes": result.notes}


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="*", metavar="VIDEO_OR_DIR")
    parser.add_argument("--limit", type=int, help="only the first N files (sorted by name)")
    parser.add_argument("--max-seconds", type=float, help="only files whose container claims <= S s")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install ffmpeg")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every approach N times per file and keep the median (steadier)")
    parser.add_argument("--json", type=Path, default=JSON_OUT, help=f"summary JSON (default {JSON_OUT})")
    parser.add_argument("--worker", nargs=2, metavar=("APPROACH", "VIDEO"), help=argparse.SUPPRESS)
    return parser.parse_args()


def select_files(args: argparse.Namespace) -> list[Path]:
    files = find_videos(args.inputs)
    if args.max_seconds is not None:
        files = [p for p in files if (container_seconds(p) or 0.0) <= args.max_seconds]
    return files[: args.limit] if args.limit else files


def main() -> None:
    args = parse_args()
    if args.worker:
        worker_main(*args.worker)
        return
    files = select_files(args)
    if not files:
        sys.exit("no video files to measure")
    ffmpeg = find_ffmpeg(allow_install=not args.no_install)
    before, run_start = cpu_seconds(), time.perf_counter()
    raw_label = "ffmpeg" if ffmpeg else "PyAV fallback"
    print(f"raw-decode baseline: {f'ffmpeg CLI ({ffmpeg})' if ffmpeg else 'PyAV loop (no ffmpeg CLI)'}")
    with tempfile.TemporaryDirectory(prefix="vcurate-bench-") as tmp:
        scratch = Path(tmp)
        print(f"{len(files)} files; every approach runs in its own child process, one at a time")
        print_header(raw_label)
        results = []
        for path in files:
            results.append(bench_file(path, ffmpeg, scratch, max(1, args.repeat)))
            print_row(results[-1])
        left = sorted(p.name for p in scratch.iterdir())
        # Measured after the files, when libraries sit in the page cache as they did for them.
        startup = {"scenedetect": startup_seconds([sys.executable, "-m", "scenedetect", "--help"], scratch)}
        if ffmpeg:
            startup["ffmpeg"] = startup_seconds([ffmpeg, "-hide_banner", "-version"], scratch)
    done = [r for r in results if r.complete]
    contention = other_load(before, time.perf_counter() - run_start)
    if left:
        print(f"note: the scenedetect CLI wrote files anyway (discarded): {left}")
    if not done:
        sys.exit("no file was handled by every approach: nothing to summarize")
    summary = summarize(done, startup)
    print_summary(summary, raw_label, startup)
    skipped = [r.file for r in results if not r.complete]
    if skipped:
        print(f"\nleft out of the totals ({len(skipped)}): {', '.join(skipped)}")
    if contention is not None:
        print(f"other processes used {contention:.0%} of the CPUs during the run"
              + (": they competed with every approach, figures are noisy" if contention > 0.1 else ""))
    report = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "raw_decode_baseline": raw_label,
              "commands": {"ffmpeg": ffmpeg_cmd(ffmpeg, Path("X"))[1:] if ffmpeg else None,
                           "scenedetect": scenedetect_cmd(Path("X"))[2:]},
              "versions": versions(ffmpeg), "other_cpu_share": contention, "startup_s": startup,
              "repeat": max(1, args.repeat),
              "summary": summary, "left_out": skipped, "files": [file_record(r) for r in results]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""Benchmark: the clips tier on a partition of many short videos, against decoding the same files.

    uv run python -m bench.clips_partition [--repeat 2] [--workers 2] [--max-videos 200] [--baseline]

The videos: every usable file of the shared footage (`bench.footage.footage_files`, reserved
files left out) cut twice (other piece lengths) into consecutive pieces of 3-10 s (at most `--per-file` a
file and cut),
each re-encoded by PyAV to H.264 (libx264, veryfast; sizes rounded down to even) so a piece
starts on its own keyframe. They are made once into .vcurate/bench/clips_partition/videos.

Each repeat is a fresh process running the clips tier as Dagster runs it: a new repository on
one local lakeFS server (orchestration.dev), a new work cache, one in-process Dagster run of
raw_pool and clips for the partition (checks included). The parent samples the child's process
tree (bench/process_tree.py) and takes the clips step's CPU between its start and end (Dagster's
step stats), split by kind of process.

Before each repeat, the same files are decoded as bench/pipeline.py's floor does (`ffmpeg -f
null` when the CLI is installed, else PyAV decoding every frame with frame threads, one process
per file), and once more by PyAV in one warm process (no interpreter start per file), on the
same cores. Reported: clips CPU and wall, decode CPU, and the ratio decode CPU / clips CPU
(issue 20's target: >= 0.75). `--baseline` runs each repeat twice, without and with the
forkserver preload (resources/compute.py `preload_worker_imports`), paired. Writes
.vcurate/bench/clips_partition/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from fractions import Fraction
from pathlib import Path

from bench.footage import footage_files, is_reserved
from bench.pipeline import ACCESS_KEY, SECRET_KEY, bench_resources, decode_floor, video_seconds
from bench.process_tree import TreeSampler

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".vcurate" / "bench" / "clips_partition"
SOURCE = "shorts"
PIECE_SECONDS = (3, 5, 7, 10, 4, 6, 8, 9)  # cycled: piece lengths of 3-10 s


# --- the videos -----------------------------------------------------------------------------------

def cut_pieces(path: Path, out_dir: Path, per_file: int, offset: int, tag: str) -> list[Path]:
    """`path` cut into consecutive pieces (lengths from PIECE_SECONDS, starting at `offset`),
    each re-encoded to H.264; a trailing piece under 3 s is dropped unless it is the only one."""
    import av

    made: list[Path] = []
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or 0)
        rate = rate if 5 <= rate <= 60 else 25.0
        out = None
        piece_start, piece_end, last_pts, frames = 0.0, 0.0, -1, 0

        def close() -> None:
            nonlocal out
            if out is not None:
                container, ostream, target = out
                out = None
                try:
                    for packet in ostream.encode():
                        container.mux(packet)
                    container.close()
                except av.FFmpegError:  # a source the muxer refuses: no piece from it
                    target.unlink(missing_ok=True)
                    return
                if frames < 3 * rate and made:  # a short tail: not a piece
                    target.unlink()
                else:
                    made.append(target)

        try:
            for frame in src.decode(stream):
                t = frame.time if frame.time is not None else frames / rate
                if out is None or t >= piece_end:
                    close()
                    if len(made) >= per_file:
                        break
                    piece_start = t
                    piece_end = t + PIECE_SECONDS[(offset + len(made)) % len(PIECE_SECONDS)]
                    target = out_dir / f"{path.stem}__{tag}{len(made):02d}.mp4"
                    container = av.open(str(target), "w")
                    ostream = container.add_stream("libx264", rate=round(rate))
                    ostream.width, ostream.height = frame.width // 2 * 2, frame.height // 2 * 2
                    ostream.pix_fmt = "yuv420p"
                    ostream.options = {"preset": "veryfast", "crf": "23"}
                    out = (container, ostream, target)
                    last_pts, frames = -1, 0
                container, ostream, _ = out
                pts = round((t - piece_start) * rate)
                if pts <= last_pts:  # a variable-rate source: keep one frame per output tick
                    continue
                image = frame.reformat(width=ostream.width, height=ostream.height, format="yuv420p")
                image.pts, image.time_base, last_pts = pts, Fraction(1, round(rate)), pts
                for packet in ostream.encode(image):
                    container.mux(packet)
                frames += 1
        except av.FFmpegError:
            pass  # a truncated source: the pieces before the damage stand
        close()
    return made


def make_videos(per_file: int, max_videos: int) -> Path:
    """The partition's folder, made once per (per_file, max_videos)."""
    folder = BENCH_DIR / f"videos-{per_file}-{max_videos}"
    if (folder / ".done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = 0
    files = [f for f in footage_files(root=ROOT) if not is_reserved(f.name)]
    # Two passes with other piece lengths: the footage alone gives about 80 pieces of 3-10 s.
    for cut in range(2):
        for i, path in enumerate(files):
            if count >= max_videos:
                break
            pieces = cut_pieces(path, folder, min(per_file, max_videos - count), offset=i + 3 * cut,
                                tag="ab"[cut])
            count += len(pieces)
    (folder / ".done").write_text(str(count))
    return folder


# --- the measured child: one Dagster run of raw_pool and clips --------------------------------------

def run_child(cfg: dict) -> dict:
    from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

    from assets.clips.asset import clips
    from assets.common.layout import tier_path
    from assets.raw_pool.asset import raw_pool

    resources = bench_resources(cfg, SOURCE, preload_worker_imports=not cfg["baseline"])
    lakefs = resources["lakefs"]
    job = define_asset_job("clips_partition", selection=AssetSelection.assets("raw_pool", "clips"))
    defs = Definitions(assets=[raw_pool, clips], jobs=[job], resources=resources)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", [SOURCE])
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def("clips_partition").execute_in_process(
        instance=instance, partition_key=SOURCE, run_config=quiet, raise_on_error=False)
    raw = lakefs.read_table(tier_path(SOURCE, "raw_pool"))
    accepted = [] if raw is None else [
        r["uri"] for r in raw.to_pylist() if r["status"] == "accepted"]
    out: dict = {"success": result.success, "steps": {}, "meta": {}, "checks": {}, "accepted": accepted}
    for s in instance.get_run_step_stats(result.run_id):
        out["steps"][s.step_key] = [s.start_time, s.end_time]
    for e in result.get_asset_materialization_events():
        out["meta"][e.materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in e.materialization.metadata.items()
            if isinstance(v.value, (int, float)) or isinstance(v.value, str) and len(v.value) < 200}
    for e in result.get_asset_check_evaluations():
        out["checks"][e.check_name] = e.passed
    out["failures"] = [f.step_failure_data.error.message.strip()[:400]
                       for f in result.get_step_failure_events()]
    return out


# --- the floors -----------------------------------------------------------------------------------

def decode_warm(videos: list[Path]) -> dict:
    """Every file decoded by PyAV (frame threads) in one process: no interpreter start per file."""
    code = ("import sys\nfrom bench.pipeline import _decode_one\n"
            "for p in sys.argv[1:]:\n    _decode_one(p)\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code, *map(str, videos)], cwd=ROOT, check=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"tool": "PyAV decode, one warm process", "wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


# --- the parent -----------------------------------------------------------------------------------

def one_repeat(endpoint: str, videos_dir: Path, workers: int, baseline: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_DIR / "runs"))
    cfg = {"workers": workers, "baseline": baseline, "endpoint": endpoint,
           "repository": f"clp-{uuid.uuid4().hex[:10]}", "workdir": str(work),
           "root": str(videos_dir.parent), "uri": videos_dir.name}
    out = work / "result.json"
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "bench.clips_partition", "--child", json.dumps(cfg),
                             str(out)], cwd=ROOT, env=env)
    with TreeSampler(proc.pid, include_reaped=True) as timeline:
        code = proc.wait()
    if code != 0 or not out.is_file():
        raise SystemExit(f"bench.clips_partition: the run failed (exit {code})")
    result = json.loads(out.read_text())
    for step, (start, end) in result["steps"].items():
        cpu, peak = timeline.window(start, end)
        result[step] = {"wall_s": end - start, "cpu_s": cpu, "peak_rss_mb": peak / 2**20,
                        "by_process": timeline.window_by_process(start, end)}
    shutil.rmtree(work, ignore_errors=True)
    return result


def summary(i: int, row: dict) -> str:
    run, clips, floor, warm = row["run"], row["run"]["clips"], row["floor"], row["warm_floor"]
    by = ", ".join(f"{k} {v:.1f}" for k, v in sorted(clips["by_process"].items(), key=lambda kv: -kv[1]))
    return (f"repeat {i + 1} [{row['mode']}]: {row['videos']} videos, {row['video_s'] / 60:.2f} video-min, "
            f"success {run['success']}, {run['meta'].get('clips', {}).get('dagster/row_count')} clips\n"
            f"  clips step: CPU {clips['cpu_s']:.1f} s ({by}), wall {clips['wall_s']:.1f} s; "
            f"raw_pool CPU {run['raw_pool']['cpu_s']:.1f} s\n"
            f"  floor ({floor['tool']}, a process per file): CPU {floor['cpu_s']:.1f} s, wall "
            f"{floor['wall_s']:.1f} s; PyAV in one warm process: CPU {warm['cpu_s']:.1f} s, wall "
            f"{warm['wall_s']:.1f} s\n"
            f"  decode CPU / clips CPU: {row['ratio']:.2f} (warm PyAV: {row['ratio_warm']:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-file", type=int, default=20, help="pieces cut from one footage file at most")
    parser.add_argument("--max-videos", type=int, default=200)
    parser.add_argument("--baseline", action="store_true",
                        help="also run without the forkserver preload, paired in each repeat")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cfg, out = args.child
        Path(out).write_text(json.dumps(run_child(json.loads(cfg)), default=str))
        return 0
    from orchestration.dev.lakefs_server import LocalLakeFS, free_port

    videos_dir = make_videos(args.per_file, args.max_videos)
    videos = sorted(videos_dir.glob("*.mp4"))
    (BENCH_DIR / "runs").mkdir(parents=True, exist_ok=True)
    modes = ["baseline", "current"] if args.baseline else ["current"]
    results: dict = {"videos_made": len(videos), "workers": args.workers, "repeats": []}
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as lakefs_dir, LocalLakeFS(
            data_dir=Path(lakefs_dir), access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            port=free_port()) as server:
        for i in range(args.repeat):
            for mode in modes:
                run = one_repeat(server.endpoint, videos_dir, args.workers, mode == "baseline")
                # The floor decodes what clips analysed: raw_pool's accepted files (it rejects
                # byte-identical pieces and files its policy refuses).
                accepted = [p for p in videos if p.name in {Path(u).name for u in run["accepted"]}]
                seconds, decodable = video_seconds(accepted)
                floor, warm = decode_floor(decodable), decode_warm(decodable)
                clips = run["clips"]
                row = {"mode": mode, "videos": len(decodable), "video_s": seconds, "floor": floor,
                       "warm_floor": warm, "run": run, "ratio": floor["cpu_s"] / clips["cpu_s"],
                       "ratio_warm": warm["cpu_s"] / clips["cpu_s"]}
                results["repeats"].append(row)
                print(summary(i, row), flush=True)
                if run["failures"]:
                    print("  failures:", run["failures"], flush=True)
                (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load benchmark: generated short videos through raw_pool → clips → scored as real Dagster runs.

    uv run python -m bench.load [--videos 1000] [--memory-videos 250] [--ray-videos 100]
                                [--pipeline-videos 40] [--workers 2] [--skip-ray] [--skip-pipeline]

Videos (256x144, 24 fps, 1-3 shots of 2.2-3.4 s; each shot static or moving, and one
truncated file per set) are generated once from `--seed` and cached under
.vcurate/bench/load/videos/. A set of N videos is the first N of them (hard links), so sets
share their videos and runs on the same N see the same bytes.

Each pipeline run is a fresh process: a new lakeFS repository on one local lakeFS server, a
new work cache (nothing is reused), and one Dagster run of a job selecting raw_pool, clips
and scored, executed in process. The parent samples the run's whole process tree (the Dagster
process, pool workers, the Ray daemons and workers) every 0.25 s with psutil: peak RSS (sum
over the tree) and CPU seconds (user + system of every process seen). Stage throughput comes
from Dagster's step start and end times. A 5-video run first warms imports, model files and
the lakeFS server, unmeasured.

* memory: the process-pool run at `--memory-videos` and at `--videos` (peak RSS must stay flat);
* Ray vs process pool: both on the same `--ray-videos` videos and `--workers` CPUs, back to
  back; a local Ray is started before the Dagster run and its start-up is reported apart;
* pipelined vs sequential (xGen A.1), at media level on the compute executor: sequential
  analyses every video, then scores every video; pipelined submits a video's scoring as soon
  as its analysis finishes. Twice: on one shared pool of `--workers` processes, and with
  each stage on its own workers (1 for analysis, the rest for scoring), as xGen runs
  clipping on CPUs and captioning on GPUs.

Writes .vcurate/bench/load/results.json and results.md (a Markdown table, also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from bench.process_tree import TreeSampler

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".vcurate" / "bench" / "load"
SOURCE = "load"
WIDTH, HEIGHT, FPS = 256, 144, 24
ACCESS_KEY = "AKIAIOSFOLVCURATEBEN"  # lakeFS wants 20 characters
SECRET_KEY = "vcurate-bench-secret-0123456789abcdefghij"
CORRUPT = "zz_truncated.mp4"


# --- videos ------------------------------------------------------------------------------------

def _texture(rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field with a few shapes: each shot its own scene."""
    base = rng.integers(0, 256, (5, 9, 3), dtype=np.uint8)
    img = cv2.resize(base, (WIDTH * 2, HEIGHT * 2), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, WIDTH * 2)), int(rng.integers(0, HEIGHT * 2)))
        cv2.circle(img, centre, int(rng.integers(8, 60)), colour, -1)
    return img


def _shot_frames(rng: np.random.Generator, seconds: float, moving: bool) -> Iterator[np.ndarray]:
    """A static shot (a still with sensor noise) or a moving one (a pan over the scene plus
    an object crossing it)."""
    scene = _texture(rng)
    n = int(round(seconds * FPS))
    # slow enough that the window never leaves the scene within a shot (a wrap would be a cut)
    dx, dy = (rng.uniform(-1.4, 1.4), rng.uniform(-0.8, 0.8)) if moving else (0.0, 0.0)
    box = int(rng.integers(14, 30))
    for i in range(n):
        x, y = int(WIDTH / 2 + dx * i), int(HEIGHT / 2 + dy * i)
        frame = scene[y:y + HEIGHT, x:x + WIDTH].astype(np.int16)
        if moving:
            bx = int((i * 3 + box) % (WIDTH - box))
            frame[40:40 + box, bx:bx + box] = 255 - frame[40:40 + box, bx:bx + box]
        frame += rng.integers(-3, 4, frame.shape, dtype=np.int16)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_load_video(path: Path, seed: int, index: int) -> None:
    """Video `index` of the set: deterministic from (seed, index)."""
    rng = np.random.default_rng([seed, index])
    shots = int(rng.integers(1, 4))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "veryfast", "crf": "26"}
        for _ in range(shots):
            for frame in _shot_frames(rng, rng.uniform(2.2, 3.4), moving=bool(rng.random() < 0.6)):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        out.mux(stream.encode())


def generate_videos(count: int, seed: int) -> list[Path]:
    """The first `count` videos of the seed's set, generated once and then reused."""
    folder = BENCH_DIR / "videos" / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"v{i:05d}.mp4"
        if not path.is_file():
            partial = path.with_suffix(".part.mp4")
            write_load_video(partial, seed, i)
            partial.replace(path)
        paths.append(path)
    corrupt = folder / CORRUPT
    if not corrupt.is_file():
        whole = paths[0].read_bytes()
        corrupt.write_bytes(whole[: len(whole) // 2])  # a download cut off halfway
    return paths


def video_set(count: int, seed: int) -> Path:
    """A source folder holding the first `count` videos and the truncated file (hard links)."""
    paths = generate_videos(count, seed)
    folder = BENCH_DIR / "sets" / f"seed{seed}-n{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in [*paths, path_of_corrupt(seed)]:
        link = folder / path.name
        if not link.exists():
            os.link(path, link)
    return folder


def path_of_corrupt(seed: int) -> Path:
    return BENCH_DIR / "videos" / f"seed{seed}" / CORRUPT


# --- one measured pipeline run (a child process) -----------------------------------------------

def run_pipeline(cfg: dict) -> dict:
    """raw_pool → clips → scored for one source as one Dagster run; step times and metadata."""
    from dagster import DagsterInstance, Definitions, define_asset_job
    from dagster_aws.s3 import S3Resource

    from assets.clips.asset import clips
    from assets.raw_pool.asset import raw_pool
    from assets.scored.asset import scored
    from quality_checks.policy.resource import PolicyResource
    from resources.captioners.resource import CaptionersResource
    from resources.compute import ComputeResource, start_ray
    from resources.lakefs import LakeFSResource
    from resources.optout import OptOutResource, write_empty_registry
    from resources.sources import SourceRegistryResource

    work = Path(cfg["workdir"])
    registry = work / "sources.yaml"
    registry.write_text(json.dumps({"root": str(BENCH_DIR), "sources": [
        {"id": SOURCE, "kind": "local", "uri": cfg["uri"], "license": "CC0-1.0"}]}))
    ray_start_s = 0.0
    if cfg["executor"] == "ray":  # started before the run, so stage times exclude it
        started = time.monotonic()
        start_ray(None, cfg["workers"], 512)
        ray_start_s = time.monotonic() - started
    repo = cfg["repository"]
    lakefs = LakeFSResource(endpoint=cfg["endpoint"], access_key_id=ACCESS_KEY,
                            secret_access_key=SECRET_KEY, repository=repo, storage_namespace=f"local://{repo}")
    lakefs.create_repository()  # a new repository per run; materializations never create one
    resources = {
        "lakefs": lakefs,
        "sources": SourceRegistryResource(path=str(registry), cache_dir=str(work / "cache"), s3=S3Resource()),
        "policy": PolicyResource(),
        "optouts": OptOutResource(path=str(write_empty_registry(work / "optout.yaml"))),
        "captioners": CaptionersResource(),
        "compute": ComputeResource(executor=cfg["executor"], max_workers=cfg["workers"]),
    }
    job = define_asset_job("load_bench", selection=["raw_pool", "clips", "scored"])
    defs = Definitions(assets=[raw_pool, clips, scored], jobs=[job], resources=resources)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", [SOURCE])
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    started = time.monotonic()
    result = defs.resolve_job_def("load_bench").execute_in_process(
        instance=instance, partition_key=SOURCE, run_config=quiet, raise_on_error=False)
    wall = time.monotonic() - started
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
    meta = {e.materialization.asset_key.to_user_string():
            {k: v.value for k, v in e.materialization.metadata.items()
             if isinstance(v.value, (int, float, str))}
            for e in result.get_asset_materialization_events()}
    return {"success": result.success, "wall_s": wall, "ray_start_s": ray_start_s, "steps": steps,
            "raw_pool": {k: meta.get("raw_pool", {}).get(k)
                         for k in ("dagster/row_count", "accepted", "rejected")},
            "clips": {k: meta.get("clips", {}).get(k) for k in (
                "dagster/row_count", "videos_analysed", "videos_failed", "compute_executor")},
            "scored": {k: meta.get("scored", {}).get(k) for k in (
                "dagster/row_count", "videos_scored", "videos_failed", "compute_executor")},
            "failures": [_error_text(f.step_failure_data.error) for f in result.get_step_failure_events()]}


def _error_text(error: object) -> str:
    """A step failure with its causes (Dagster wraps the asset's exception)."""
    parts = []
    while error is not None:
        parts.append(error.message.strip()[:400])
        error = error.cause
    return " <- ".join(parts)


# --- pipelined vs sequential at media level (a child process) ----------------------------------

def _video_job(video_id: str, analysis: object) -> object:
    """The scored worker's input for one analysed video, as the scored tier builds it."""
    import pyarrow as pa

    from assets.scored.rows import VideoJob
    from media.signals.clip_signals import ClipInput
    from resources.lakefs import table_to_parquet_bytes

    stats = pa.table({"frame": pa.array(range(analysis.frame_count), pa.int64()),
                      **{k: pa.array(v) for k, v in analysis.stats.items()}})
    clips = [ClipInput(clip_id=f"{video_id}-{c.start}", start_frame=c.start, end_frame=c.end,
                       fps=analysis.fps, keyframes=[(role, frame, analysis.keyframe_jpegs[frame])
                                                    for role, frame in c.keyframes.items()])
             for c in analysis.clips]
    return VideoJob(video_id, video_id, clips, table_to_parquet_bytes(stats))


def run_media_pipeline(cfg: dict) -> dict:
    """Analyse then score every video, in one mode: 'sequential' or 'pipelined'. `split` gives
    each stage its own workers (analysis 1, scoring the rest), as xGen gives clipping CPUs and
    captioning GPUs; otherwise both stages share one pool."""
    from functools import partial

    from assets.clips.rows import Analysed, AnalysisJob, analyze_with_cache, load_analysis
    from assets.scored.rows import score_with_cache
    from media.decode.hashing import sha256_file
    from media.shots.analysis import AnalysisParams
    from media.signals.clip_signals import SignalParams
    from resources.compute import ComputeResource

    work = Path(cfg["workdir"])
    videos = sorted(Path(cfg["folder"]).glob("v*.mp4"))
    jobs = [AnalysisJob(p.stem, str(p), sha256_file(p)) for p in videos]  # clips re-hashes what it decodes
    params = AnalysisParams()
    analyze = partial(analyze_with_cache, params=params, cache_root=str(work / "analysis"))
    score = partial(score_with_cache, params=SignalParams(), cache_root=str(work / "signals"))
    analyser = scorer = ComputeResource(max_workers=cfg["workers"]).task_executor()
    if cfg["split"]:
        analyser = ComputeResource(max_workers=1).task_executor()
        scorer = ComputeResource(max_workers=max(1, cfg["workers"] - 1)).task_executor()

    def analysed() -> Iterator[object]:
        for job, found, _ in analyser.map_unordered("clips", analyze, jobs):
            if isinstance(found, Analysed):
                analysis = load_analysis(Path(found.path), job.sha256, params)
                if analysis is not None:
                    yield _video_job(job.video_id, analysis)

    started = time.monotonic()
    with analyser, scorer:  # each pool lives for both stages: workers keep their models
        if cfg["mode"] == "sequential":
            ready = list(analysed())
            analysed_at = time.monotonic() - started
            scored = [o for o in scorer.map_unordered("scored", score, ready) if o.result is not None]
        else:
            analysed_at = None
            scored = [o for o in scorer.map_unordered("scored", score, analysed()) if o.result is not None]
    return {"wall_s": time.monotonic() - started, "analysed_s": analysed_at, "videos": len(scored),
            "clips": sum(len(o.result[0]) for o in scored)}


# --- the parent: run children, sample their process tree ---------------------------------------

def measured(kind: str, cfg: dict) -> dict:
    """Run `kind` ('pipeline' or 'media') with `cfg` in a fresh process; its result + resources."""
    out = Path(cfg["workdir"]) / "result.json"
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "bench.load", "--child", kind, json.dumps(cfg),
                             str(out)], cwd=ROOT, env=env)
    with TreeSampler(proc.pid) as sampler:
        code = proc.wait()
    if code != 0:
        raise SystemExit(f"bench.load: the {kind} run {cfg} failed (exit {code})")
    result = json.loads(out.read_text())
    result.update(peak_rss_mb=sampler.peak_rss / 2**20, peak_main_rss_mb=sampler.peak_main_rss / 2**20,
                  cpu_s=sampler.cpu_s)
    return result


def pipeline_run(lakefs_endpoint: str, executor: str, count: int, args: argparse.Namespace) -> dict:
    folder = video_set(count, args.seed)
    work = Path(tempfile.mkdtemp(prefix=f"{executor}-n{count}-", dir=BENCH_DIR / "runs"))
    cfg = {"executor": executor, "workers": args.workers, "endpoint": lakefs_endpoint,
           "repository": f"load-{uuid.uuid4().hex[:10]}", "workdir": str(work),
           "uri": str(folder.relative_to(BENCH_DIR))}
    print(f"pipeline: {executor}, {count} videos ...", flush=True)
    result = measured("pipeline", cfg)
    if not result["success"]:
        print(f"pipeline run failed: {result['failures']}", flush=True)
    steps = result["steps"]
    clips = result["clips"]["dagster/row_count"] or 0
    result.update(executor=executor, videos=count, clips_made=clips,
                  videos_per_s={s: count / steps[s] for s in steps if steps[s]},
                  clips_per_s={s: clips / steps[s] for s in ("clips", "scored") if steps.get(s)})
    print(json.dumps({k: result[k] for k in ("success", "wall_s", "steps", "peak_rss_mb", "cpu_s")}),
          flush=True)
    return result


def media_run(mode: str, split: bool, count: int, args: argparse.Namespace) -> dict:
    folder = video_set(count, args.seed)
    work = Path(tempfile.mkdtemp(prefix=f"media-{mode}-", dir=BENCH_DIR / "runs"))
    print(f"media level: {mode}, {'own workers per stage' if split else 'one pool'}, {count} videos ...",
          flush=True)
    result = measured("media", {"mode": mode, "split": split, "workers": args.workers,
                                "folder": str(folder), "workdir": str(work)})
    result.update(mode=f"{mode}, {'1 + 1 workers (stage each)' if split else 'shared pool'}",
                  videos_in=count)
    print(json.dumps(result), flush=True)
    return result


def markdown(results: dict) -> str:
    lines = ["| run | videos | clips | raw_pool videos/s | clips videos/s (clips/s) | scored videos/s "
             "(clips/s) | run wall s | CPU s (tree) | peak RSS MB (tree / main) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["pipeline"]:
        v, c = r["videos_per_s"], r["clips_per_s"]
        ray = f", Ray start {r['ray_start_s']:.0f} s not counted" if r["executor"] == "ray" else ""
        ray += "" if r["success"] else " (FAILED)"
        lines.append(
            f"| {r['executor']}{ray} | {r['videos']} | {r['clips_made']} | {v.get('raw_pool', 0):.1f} | "
            f"{v.get('clips', 0):.2f} ({c.get('clips', 0):.2f}) | {v.get('scored', 0):.2f} "
            f"({c.get('scored', 0):.2f}) | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
            f"{r['peak_rss_mb']:.0f} / {r['peak_main_rss_mb']:.0f} |")
    for name, value in results["ratios"].items():
        lines.append(f"\n{name}: **{value:.2f}**")
    if results["media"]:
        lines.append("\n| media level | videos | clips | wall s | CPU s | analysis done at s |\n"
                     "|---|---|---|---|---|---|")
        for r in results["media"]:
            done = f"{r['analysed_s']:.0f}" if r["analysed_s"] else "-"
            lines.append(f"| {r['mode']} | {r['videos']} | {r['clips']} | {r['wall_s']:.1f} | "
                         f"{r['cpu_s']:.0f} | {done} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000, help="the large run (process pool)")
    parser.add_argument("--memory-videos", type=int, default=250,
                        help="the small run peak RSS is compared with (0: no memory runs)")
    parser.add_argument("--ray-videos", type=int, default=100,
                        help="Ray and the process pool on these videos")
    parser.add_argument("--pipeline-videos", type=int, default=40, help="pipelined vs sequential")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, cfg, out = args.child
        run = run_pipeline if kind == "pipeline" else run_media_pipeline
        Path(out).write_text(json.dumps(run(json.loads(cfg))))
        return 0

    from orchestration.dev.lakefs_server import LocalLakeFS, free_port

    (BENCH_DIR / "runs").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generate_videos(max(args.videos, args.memory_videos, args.ray_videos, args.pipeline_videos), args.seed)
    print(f"videos ready in {time.monotonic() - started:.0f} s", flush=True)
    results: dict = {"args": vars(args), "pipeline": [], "media": [], "ratios": {}}

    def save() -> None:  # after every run: a long bench that is stopped keeps what it measured
        (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2))

    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as lakefs_dir, LocalLakeFS(
            data_dir=Path(lakefs_dir), access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            port=free_port()) as server:
        # unmeasured: first imports, model files and the lakeFS server warm up here
        pipeline_run(server.endpoint, "local", 5, args)
        small = None
        if args.memory_videos:
            small = pipeline_run(server.endpoint, "local", args.memory_videos, args)
        if small:
            results["pipeline"].append(small)
            save()
        if small and args.videos != args.memory_videos:
            large = pipeline_run(server.endpoint, "local", args.videos, args)
            results["pipeline"].append(large)
            save()
            results["ratios"][f"peak RSS {args.videos} / {args.memory_videos} videos (tree)"] = (
                large["peak_rss_mb"] / small["peak_rss_mb"])
            results["ratios"][f"peak RSS {args.videos} / {args.memory_videos} videos (main process)"] = (
                large["peak_main_rss_mb"] / small["peak_main_rss_mb"])
        if not args.skip_ray:
            # back to back on the same videos, so both see the same load from other users
            pool = pipeline_run(server.endpoint, "local", args.ray_videos, args)
            ray = pipeline_run(server.endpoint, "ray", args.ray_videos, args)
            results["pipeline"] += [pool, ray]
            for step in ("clips", "scored"):
                results["ratios"][f"{step} step time, Ray / process pool ({args.ray_videos} videos)"] = (
                    ray["steps"][step] / pool["steps"][step])
    if not args.skip_pipeline:
        for split in (False, True):
            sequential = media_run("sequential", split, args.pipeline_videos, args)
            pipelined = media_run("pipelined", split, args.pipeline_videos, args)
            results["media"] += [sequential, pipelined]
            name = "own workers per stage" if split else "one shared pool"
            results["ratios"][f"sequential / pipelined wall time (media level, {name})"] = (
                sequential["wall_s"] / pipelined["wall_s"])
            save()
    results["total_wall_s"] = time.monotonic() - started
    table = markdown(results)
    save()
    (BENCH_DIR / "results.md").write_text(table + "\n")
    print("\n" + table + f"\n\nbench wall time {results['total_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

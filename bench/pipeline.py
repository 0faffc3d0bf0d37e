"""Benchmark: real footage as one source through every tier to a release, as Dagster runs on lakeFS.

    uv run python -m bench.pipeline [--footage DIR] [--repeat 2] [--workers 2]

The shared footage set (`bash ../shared/footage/fetch.sh .vcurate/footage all`: long and short
files, 176x144 to 1080p, H.264, VP8/9, Theora, MPEG-4, MJPEG, and a truncated file) is one
source. Each repeat is a fresh process: a new lakeFS repository on one local lakeFS server, a
new work cache (nothing reused), then two Dagster runs executed in process, as a data team
launches them: `materialize_source` (raw_pool → clips → scored → captioned → the four stages)
for the partition, then `publish_release`.

The parent samples the child's whole process tree (the Dagster process and its pool
workers) every 0.25 s with psutil: CPU seconds (user + system, summed over every process
seen) and RSS (summed). A tier's CPU seconds are the tree's CPU between its step's start
and end (Dagster's step stats), its peak RSS the largest sum seen inside that window.

The floor: the same files decoded by ffmpeg (`ffmpeg -f null -` when the CLI is installed,
else PyAV's bundled FFmpeg libraries decoding every frame with frame threads, as ffmpeg
does), one process per file, in the same run, before each repeat. Reported per tier: CPU s
and wall s per video-minute, clips per second (wall), peak RSS; and the whole run as
video-hours per core-hour (video time over tree CPU time). Writes
.vcurate/bench/pipeline/results.json and results.md (also printed).
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
from pathlib import Path

from bench.footage import list_videos, require_footage
from bench.process_tree import TreeSampler

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".vcurate" / "bench" / "pipeline"
SOURCE = "footage"
ACCESS_KEY = "AKIAIOSFOLVCURATEPIP"  # lakeFS wants 20 characters
SECRET_KEY = "vcurate-bench-secret-pipeline-0123456789"
TIERS = ("raw_pool", "clips", "scored", "captioned", "stage_256p", "stage_480p", "stage_720p", "sft",
         "release")


# --- the measured child: two Dagster runs -------------------------------------------------------

def bench_resources(cfg: dict, source: str, **compute: object) -> dict:
    """The Dagster resources of a bench child: a registry of one local source (`cfg["uri"]` under
    `cfg["root"]`), a new lakeFS repository `cfg["repository"]` on `cfg["endpoint"]`, the default
    policy, no opt-outs and the local process pool of `cfg["workers"]`."""
    from dagster_aws.s3 import S3Resource

    from quality_checks.policy.resource import PolicyResource
    from resources.compute import ComputeResource
    from resources.lakefs import LakeFSResource
    from resources.optout import OptOutResource, write_empty_registry
    from resources.sources import SourceRegistryResource

    work = Path(cfg["workdir"])
    registry = work / "sources.yaml"
    registry.write_text(json.dumps({"root": cfg["root"], "sources": [
        {"id": source, "kind": "local", "uri": cfg["uri"], "license": "CC0-1.0"}]}))
    repo = cfg["repository"]
    lakefs = LakeFSResource(endpoint=cfg["endpoint"], access_key_id=ACCESS_KEY,
                            secret_access_key=SECRET_KEY, repository=repo, storage_namespace=f"local://{repo}")
    lakefs.create_repository()
    return {
        "lakefs": lakefs,
        "sources": SourceRegistryResource(path=str(registry), cache_dir=str(work / "cache"), s3=S3Resource()),
        "policy": PolicyResource(),
        "optouts": OptOutResource(path=str(write_empty_registry(work / "optout.yaml"))),
        "compute": ComputeResource(executor="local", max_workers=cfg["workers"], **compute),
    }


def run_child(cfg: dict) -> dict:
    from dagster import DagsterInstance, Definitions

    from assets.captioned.asset import captioned
    from assets.clips.asset import clips
    from assets.raw_pool.asset import raw_pool
    from assets.release.asset import release
    from assets.scored.asset import scored
    from assets.stages.asset import stage_assets
    from orchestration.jobs import materialize_source, publish_release
    from resources.captioners.resource import CaptionersResource

    resources = bench_resources(cfg, SOURCE)
    resources["captioners"] = CaptionersResource()
    defs = Definitions(assets=[raw_pool, clips, scored, captioned, *stage_assets, release],
                       jobs=[materialize_source, publish_release], resources=resources)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", [SOURCE])
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    out: dict = {"steps": {}, "meta": {}, "failures": [], "success": True}
    for job, partition in (("materialize_source", SOURCE), ("publish_release", None)):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition, run_config=quiet, raise_on_error=False)
        out["success"] &= result.success
        for s in instance.get_run_step_stats(result.run_id):
            out["steps"][s.step_key] = [s.start_time, s.end_time]
        for e in result.get_asset_materialization_events():
            meta = e.materialization.metadata.items()
            out["meta"][e.materialization.asset_key.to_user_string()] = {
                k: v.value for k, v in meta if isinstance(v.value, (int, float, str))}
        out["failures"] += [f.step_failure_data.error.message.strip()[:400]
                            for f in result.get_step_failure_events()]
    return out


# --- sampling the process tree ------------------------------------------------------------------

# --- the floor ------------------------------------------------------------------------------------

def _decode_one(path: str) -> None:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass


def decode_floor(videos: list[Path]) -> dict:
    """Every file decoded once, one process each; CPU from the children's rusage."""
    ffmpeg = shutil.which("ffmpeg")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    for path in videos:
        if ffmpeg:
            cmd = [ffmpeg, "-v", "quiet", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
        else:
            code = f"from bench.pipeline import _decode_one; _decode_one({str(path)!r})"
            cmd = [sys.executable, "-c", code]
        subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"tool": "ffmpeg -f null" if ffmpeg else "PyAV decode (bundled FFmpeg, frame threads)",
            "cpu_s": cpu, "wall_s": wall}


def video_seconds(videos: list[Path]) -> tuple[float, list[Path]]:
    """Total duration of the decodable files, and those files."""
    import av

    total, ok = 0.0, []
    for path in videos:
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                seconds = float(stream.duration * stream.time_base) if stream.duration else \
                    (container.duration or 0) / 1e6
        except Exception:  # a truncated or empty file: raw_pool rejects it, it adds no video time
            continue
        if seconds > 0:
            total += seconds
            ok.append(path)
    return total, ok


# --- the parent ------------------------------------------------------------------------------------

def one_repeat(endpoint: str, footage: Path, workers: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_DIR / "runs"))
    cfg = {"workers": workers, "endpoint": endpoint, "repository": f"pipe-{uuid.uuid4().hex[:10]}",
           "workdir": str(work), "root": str(footage.parent), "uri": footage.name}
    out = work / "result.json"
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "bench.pipeline", "--child", json.dumps(cfg),
                             str(out)], cwd=ROOT, env=env)
    with TreeSampler(proc.pid, include_reaped=True) as timeline:
        code = proc.wait()
    wall = time.monotonic() - started
    if code != 0 or not out.is_file():
        raise SystemExit(f"bench.pipeline: the run failed (exit {code})")
    result = json.loads(out.read_text())
    tiers = {}
    for step, (start, end) in result["steps"].items():
        cpu, peak = timeline.window(start, end)
        tiers[step] = {"wall_s": end - start, "cpu_s": cpu, "peak_rss_mb": peak / 2**20}
    result.update(tiers=tiers, process_wall_s=wall,
                  process_cpu_s=timeline.samples[-1][1] if timeline.samples else 0.0,
                  peak_rss_mb=timeline.peak_rss / 2**20)
    shutil.rmtree(work / "cache", ignore_errors=True)
    return result


def markdown(results: dict) -> str:
    minutes = results["video_s"] / 60
    lines = [f"{results['files']} files ({results['decodable']} decodable), {minutes:.2f} video-minutes, "
             f"{results['workers']} workers, {len(results['repeats'])} repeats (cells: repeat 1 / 2)\n",
             "| tier | CPU s per video-minute | wall s per video-minute | clips/s (wall) | peak RSS MB "
             "(tree) |",
             "|---|---|---|---|---|"]

    def cells(values: list[float], fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in values)

    clips = [r["meta"].get("clips", {}).get("dagster/row_count") or 0 for r in results["repeats"]]
    steps = [s for s in TIERS if all(s in r["tiers"] for r in results["repeats"])]
    steps += sorted({s for r in results["repeats"] for s in r["tiers"]} - set(steps))
    for step in steps:
        rows = [r["tiers"].get(step, {"cpu_s": 0, "wall_s": 0, "peak_rss_mb": 0}) for r in results["repeats"]]
        rates = [c / t["wall_s"] if t["wall_s"] else 0 for c, t in zip(clips, rows, strict=True)]
        lines.append(f"| {step} | {cells([t['cpu_s'] / minutes for t in rows], '.2f')} | "
                     f"{cells([t['wall_s'] / minutes for t in rows], '.2f')} | {cells(rates, '.2f')} | "
                     f"{cells([t['peak_rss_mb'] for t in rows], '.0f')} |")
    cpu = [r["process_cpu_s"] for r in results["repeats"]]
    wall = [r["process_wall_s"] for r in results["repeats"]]
    rates = [c / w for c, w in zip(clips, wall, strict=True)]
    lines.append(f"| **whole run** (process, incl. start-up) | {cells([c / minutes for c in cpu], '.2f')} | "
                 f"{cells([w / minutes for w in wall], '.2f')} | {cells(rates, '.2f')} | "
                 f"{cells([r['peak_rss_mb'] for r in results['repeats']], '.0f')} |")
    floors = results["floor"]
    lines.append(f"| floor: {floors[0]['tool']} | {cells([f['cpu_s'] / minutes for f in floors], '.2f')} | "
                 f"{cells([f['wall_s'] / minutes for f in floors], '.2f')} | - | - |")
    hours = results["video_s"] / 3600
    end_to_end = cells([hours / (c / 3600) for c in cpu], ".2f")
    lines.append(f"\nvideo-hours per core-hour, end to end: **{end_to_end}**"
                 f"; the decode floor: {cells([hours / (f['cpu_s'] / 3600) for f in floors], '.1f')}")
    per_tier = ", ".join(
        f"{s} {cells([hours / (r['tiers'][s]['cpu_s'] / 3600) for r in results['repeats']], '.1f')}"
        for s in steps if all(r["tiers"].get(s, {}).get("cpu_s") for r in results["repeats"]))
    lines.append(f"\nper tier (video-hours per core-hour): {per_tier}")
    lines.append(f"\nclips made: {cells(clips, 'd')}; scored routes and counts per tier are in results.json")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cfg, out = args.child
        Path(out).write_text(json.dumps(run_child(json.loads(cfg)), default=str))
        return 0
    from orchestration.dev.lakefs_server import LocalLakeFS, free_port

    footage = require_footage(args.footage).resolve()
    videos = list_videos(footage)
    seconds, decodable = video_seconds(videos)
    (BENCH_DIR / "runs").mkdir(parents=True, exist_ok=True)
    results: dict = {"footage": str(footage), "files": len(videos), "decodable": len(decodable),
                     "video_s": seconds, "workers": args.workers, "repeats": [], "floor": []}
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as lakefs_dir, LocalLakeFS(
            data_dir=Path(lakefs_dir), access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            port=free_port()) as server:
        for i in range(args.repeat):
            results["floor"].append(decode_floor(decodable))
            print(f"repeat {i + 1}: floor {results['floor'][-1]}", flush=True)
            results["repeats"].append(one_repeat(server.endpoint, footage, args.workers))
            r = results["repeats"][-1]
            print(json.dumps({"success": r["success"], "wall_s": r["process_wall_s"],
                              "cpu_s": r["process_cpu_s"], "tiers": r["tiers"], "failures": r["failures"]}),
                  flush=True)
            (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2, default=str))
    table = markdown(results)
    (BENCH_DIR / "results.md").write_text(table + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

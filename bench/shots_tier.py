"""Benchmark: bench/shots.py's constructed videos through the product, scored on the clips table
read back from lakeFS `main`, beside the same score on `VideoAnalysis.clips` in this process.

    uv run python -m bench.shots_tier [--footage DIR] [--seed 7] [--videos 2] [--workers 2]

bench/shots.py scores the spans the analysis returns in its own process. A user sees what the
clips tier published: the policy's settings, the tier's decode path (long videos in time
segments, a process pool, the work cache) and its write-audit-publish commit stand between the
two. Here the built videos (the same construction and seed, reused from .vcurate/bench/shots)
are one local source; a fresh process runs raw_pool and clips as one in-process Dagster run on a
fresh repository of a local lakeFS server (orchestration.dev, the bench/pipeline.py resources),
then reads raw_pool and clips from `main`. Every video's published rows (start_frame,
end_frame) are scored with bench/shots.py's `score_published`, per half and kind, and so are
the spans `analyze_video_decoding_once` gives here with the default parameters. A difference
between the two columns is a difference a user would see and the function bench would not.
Writes .vcurate/bench/shots_tier.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.footage import footage_files, require_footage
from bench.pipeline import ACCESS_KEY, SECRET_KEY, bench_resources
from bench.shots import HALVES, KINDS, STATE, Built, build_all, prf, score_published

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / STATE / "shots_tier"
SOURCE = "shots"


def run_child(cfg: dict) -> dict:
    """raw_pool and clips for the source, one Dagster run; the tables as `main` holds them."""
    from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

    from assets.clips.asset import clips
    from assets.common.layout import tier_path
    from assets.raw_pool.asset import raw_pool

    resources = bench_resources(cfg, SOURCE)
    lakefs = resources["lakefs"]
    job = define_asset_job("shots_tier", selection=AssetSelection.assets("raw_pool", "clips"))
    defs = Definitions(assets=[raw_pool, clips], jobs=[job], resources=resources)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", [SOURCE])
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = defs.resolve_job_def("shots_tier").execute_in_process(
        instance=instance, partition_key=SOURCE, run_config=quiet, raise_on_error=False)
    raw = lakefs.read_table(tier_path(SOURCE, "raw_pool"))
    table = lakefs.read_table(tier_path(SOURCE, "clips"))
    return {"success": result.success,
            "failures": [f.step_failure_data.error.message.strip()[:400]
                         for f in result.get_step_failure_events()],
            "raw_pool": [] if raw is None else raw.select(["uri", "status", "reason"]).to_pylist(),
            "clips": [] if table is None else table.select(
                ["uri", "start_frame", "end_frame", "fps"]).to_pylist()}


def tier_tables(videos_dir: Path, workers: int) -> dict:
    from orchestration.dev.lakefs_server import LocalLakeFS, free_port

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as work, LocalLakeFS(
            data_dir=Path(work) / "lakefs", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            port=free_port()) as server:
        cfg = {"workers": workers, "endpoint": server.endpoint,
               "repository": f"shots-{uuid.uuid4().hex[:10]}", "workdir": work,
               "root": str(videos_dir.parent), "uri": videos_dir.name}
        out = Path(work) / "result.json"
        env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
        subprocess.run([sys.executable, "-m", "bench.shots_tier", "--child", json.dumps(cfg), str(out)],
                       cwd=ROOT, env=env, check=True)
        return json.loads(out.read_text())


def source_folder(built: list[Built]) -> Path:
    """The built videos, hard-linked into a folder of their own (the source's uri)."""
    folder = BENCH_DIR / "videos"
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for b in built:
        os.link(b.path, folder / b.path.name)
    return folder


def add(totals: dict, video: Built, scores: dict[str, int]) -> None:
    row = totals.setdefault(video.half, {}).setdefault(video.kind, {"videos": 0})
    row["videos"] += 1
    for name, value in scores.items():
        row[name] = row.get(name, 0) + value


def finish(totals: dict) -> dict:
    return {half: {kind: {**row, **prf(row["tp"], row["fp"], row["fn"])} for kind, row in kinds.items()}
            for half, kinds in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--videos", type=int, default=2, help="videos per kind and half (bench/shots.py)")
    parser.add_argument("--singles", type=int, default=8)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cfg, out = args.child
        Path(out).write_text(json.dumps(run_child(json.loads(cfg)), default=str))
        return 0

    from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
    from quality_checks.policy.resource import PolicyResource

    footage = footage_files(require_footage(args.footage))
    built = build_all(footage, args.videos, args.singles, args.segments, args.seed)
    tables = tier_tables(source_folder(built), args.workers)
    if tables["failures"]:
        print("failures:", *tables["failures"], sep="\n  ")
    rejected = {Path(r["uri"]).name: r["reason"] for r in tables["raw_pool"] if r["status"] != "accepted"}
    published: dict[str, list[tuple[int, int]]] = {}
    for row in tables["clips"]:
        published.setdefault(Path(row["uri"]).name, []).append((row["start_frame"], row["end_frame"]))
    min_clip_s = PolicyResource().load().clips.min_clip_s
    here, tier, differ = {}, {}, []
    for video in built:
        analysis = analyze_video_decoding_once(video.path, AnalysisParams())
        mine = [(c.start, c.end) for c in analysis.clips]
        theirs = sorted(published.get(video.path.name, []))
        add(here, video, score_published(video, mine, analysis.fps, min_clip_s))
        add(tier, video, score_published(video, theirs, analysis.fps, min_clip_s))
        if mine != theirs:
            differ.append({"video": video.path.name, "function": mine, "table": theirs,
                           "rejected": rejected.get(video.path.name)})
    report = {"seed": args.seed, "run_success": tables["success"], "min_clip_s": min_clip_s,
              "function": finish(here), "table": finish(tier), "videos_differing": differ}
    print(f"published F1 ±2, function (VideoAnalysis.clips here) / table (clips on lakeFS main); "
          f"run success {tables['success']}, min_clip_s {min_clip_s}")
    print(f"{'kind':9} {'half':5} {'function':>9} {'table':>7} {'lost f/t':>9} {'no clip f/t':>11}")
    for kind in KINDS:
        for half in HALVES:
            f, t = report["function"].get(half, {}).get(kind), report["table"].get(half, {}).get(kind)
            if f is None:
                continue
            print(f"{kind:9} {half[:5]:5} {f['f1']:9.3f} {t['f1']:7.3f} "
                  f"{f['lost_shots']:>4}/{t['lost_shots']:<4} "
                  f"{f['videos_without_clip']:>5}/{t['videos_without_clip']:<5}")
    print(f"{len(differ)} of {len(built)} videos publish other spans than the function gives")
    for d in differ:
        print(f"  {d['video']}: function {d['function']}\n  {' ' * len(d['video'])}  table    {d['table']}"
              + (f" (raw_pool: {d['rejected']})" if d["rejected"] else ""))
    (ROOT / STATE / "shots_tier.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

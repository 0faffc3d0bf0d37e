"""lakeFS garbage collection, run for real: lakeFS's own Spark client on a local Spark.

The collector (`io.treeverse.gc.GarbageCollection`, Maven Central `io.lakefs`) asks lakeFS which
commits are expired under the repository's GC rules, lists what live commits, branch heads and
tags still reference, and deletes every other object under the storage namespace, then writes
a report (`_lakefs/retention/gc/unified/<run id>/summary.json` and the deleted addresses) there.
It runs only where the blockstore is S3 (or Azure/GCS), never on the local blockstore.

Spark is pyspark from PyPI (`uv sync --extra gc`), Java the machine's; the client and S3A jars
come from Maven Central through `gc-client/pom.xml` and are cached. pyspark ships an older
okhttp and gson than lakeFS's API client needs: those go first on the driver's class path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from resources.redact import redact

GC_CLIENT = "lakefs-spark-client-301_2.12-0.10.0"
POM = Path(__file__).resolve().parents[1] / "gc-client" / "pom.xml"
# Jars that must win over pyspark's own older copies (okhttp 3, okio 1, gson 2.2).
_FIRST = ("okhttp-4", "okio-2", "kotlin-stdlib", "gson-2.8")
# What the client needs beyond Spark and Hadoop; the rest Maven brings (Azure, netty) is unused
# on S3 and would only shadow pyspark's versions.
_NEEDED = (GC_CLIENT, "api-client-", "scalapb-runtime", "lenses_", "fastparse_", "sourcecode_",
           "protobuf-java-", "scallop_", "failsafe-", "gson-fire", "threetenbp", "jackson-databind-nullable",
           "swagger-annotations", "logging-interceptor", "hadoop-aws-", "aws-java-sdk-bundle",
           "json4s-native_")



def cache_dir() -> Path:
    """The tool cache the lakeFS and SeaweedFS binaries share (orchestration/dev/lakefs_binary.py)."""
    return Path(os.environ.get("VCURATE_CACHE", "~/.cache/vcurate")).expanduser()


class GcUnavailable(RuntimeError):
    """Spark, Java, Maven or the client jars are missing: says what to install."""


@dataclass(frozen=True)
class GcRun:
    run_id: str
    success: bool
    deleted_objects: int
    cutoff_time: str
    seconds: float
    log_path: Path


def gc_jars(log: bool = True) -> Path:
    """The folder of the collector's jars, fetched from Maven Central on first use."""
    folder = cache_dir() / GC_CLIENT
    if (folder / f"{GC_CLIENT}.jar").is_file():
        return folder
    mvn = shutil.which("mvn")
    if mvn is None:
        raise GcUnavailable("Maven (`mvn`) is needed once to fetch lakeFS's Spark GC client from Maven "
                            "Central (apt-get install maven)")
    if log:
        print(f"[gc] fetching {GC_CLIENT} and hadoop-aws from Maven Central (first run only)...", flush=True)
    partial = folder.with_name(folder.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run([mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                           f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise GcUnavailable(f"mvn could not fetch the GC client:\n{(proc.stdout + proc.stderr)[-3000:]}")
    partial.rename(folder)
    return folder


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError as exc:
        raise GcUnavailable("pyspark is not installed: `uv sync --extra gc` (lakeFS GC runs on "
                            "Spark)") from exc
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise GcUnavailable("Java is needed for Spark (apt-get install openjdk-17-jre-headless)")
    return Path(pyspark.__file__).parent


def run_gc(*, lakefs_endpoint: str, access_key_id: str, secret_access_key: str, repository: str,
           s3_endpoint: str, s3_access_key_id: str, s3_secret_access_key: str, region: str = "us-east-1",
           min_age_s: int | None = None, log_path: Path, read_report, clear_probe=None) -> GcRun:
    """Run one GC of `repository` and return its report. `read_report(run_id_or_None)` reads
    the summaries GC wrote under the storage namespace (the caller knows the object store).
    `min_age_s`: objects written more recently are never collected (lakeFS's default, 6 h,
    protects uploads in flight; a takedown of fresh data must lower it). `clear_probe()`
    deletes lakeFS's `_lakefs/dummy` (written once, when the repository is made, to check the
    store is writable): client 0.10.0 reads every file there as a range and fails on it (fixed
    in 0.12.0, "skip dummy file", which Maven Central does not serve here)."""
    folder = gc_jars()
    jars = sorted(folder.glob("*.jar"))
    first = [str(j) for j in jars if j.name.startswith(_FIRST)]
    extra = [str(j) for j in jars if j.name.startswith(_NEEDED)]
    home = spark_home()
    conf = {
        "spark.hadoop.lakefs.api.url": lakefs_endpoint.rstrip("/") + "/api/v1",
        "spark.hadoop.lakefs.api.access_key": access_key_id,
        "spark.hadoop.lakefs.api.secret_key": secret_access_key,
        "spark.hadoop.fs.s3a.access.key": s3_access_key_id,
        "spark.hadoop.fs.s3a.secret.key": s3_secret_access_key,
        "spark.hadoop.fs.s3a.endpoint": s3_endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s3_endpoint.startswith("https")).lower(),
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
    }
    if min_age_s is not None:
        conf["spark.hadoop.lakefs.debug.gc.uncommitted_min_age_seconds"] = str(min_age_s)
    if clear_probe is not None:
        clear_probe()
    before = set(read_report(None))
    args = [str(home / "bin" / "spark-submit"), "--master", "local[2]", "--driver-memory", "1g",
            "--driver-class-path", ":".join(first), "--jars", ",".join(extra)]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    args += ["--class", "io.treeverse.gc.GarbageCollection", str(folder / f"{GC_CLIENT}.jar"),
             repository, region]
    started = time.monotonic()
    with open(log_path, "wb") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"})
    seconds = time.monotonic() - started
    summaries = read_report(None)
    new = [s for run_id, s in summaries.items() if run_id not in before]
    # spark-submit can exit 0, and the summary say success, after a stage failed (seen with an
    # S3 that mishandles ranges): a failed job in the log fails the run too.
    aborted = "Job aborted due to stage failure" in log_path.read_text(errors="replace")
    if proc.returncode != 0 or aborted or not new or not new[0].get("success"):
        tail = redact(log_path.read_text(errors="replace")[-3000:])
        raise RuntimeError(f"lakeFS GC failed (exit {proc.returncode}, summary {json.dumps(new)}); "
                           f"log {log_path}:\n{tail}")
    summary = new[0]
    return GcRun(summary["run_id"], True, int(summary.get("num_deleted_objects", 0)),
                 summary.get("cutoff_time", ""), seconds, log_path)

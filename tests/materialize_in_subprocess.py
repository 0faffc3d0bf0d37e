"""Run one clips materialization in this process, for tests that kill it (`kill -9`).

Usage: python -m tests.materialize_in_subprocess CONFIG.json, where the JSON names the lakeFS
endpoint, keys and repository, the S3 gateway, the work folder (cache and opt-outs, as the
test's `Pipeline` uses them), the source registry and the partition.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster import materialize
from dagster_aws.s3 import S3Resource

from assets.clips.asset import clips
from assets.raw_pool.asset import raw_pool
from resources.lakefs import LakeFSResource
from tests.conftest import Pipeline


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    # the same resources the test's in-process reruns use, so a rerun finds this run's cache
    pipeline = Pipeline(LakeFSResource(**config["lakefs"]), S3Resource(**config["s3"]),
                        Path(config["root"]))
    pipeline.instance.add_dynamic_partitions("source", [config["source"]])
    result = materialize([raw_pool, clips], selection=[clips], partition_key=config["source"],
                         resources=pipeline.resources(Path(config["registry"])),
                         instance=pipeline.instance, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

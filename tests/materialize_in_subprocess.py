"""Run one clips materialization in this process, for tests that kill it (`kill -9`).

Usage: python -m tests.materialize_in_subprocess CONFIG.json, where the JSON names the lakeFS
endpoint, keys and repository, the source registry, cache dir and partition.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster import DagsterInstance, materialize
from dagster_aws.s3 import S3Resource

from assets.clips import clips
from assets.raw_pool import raw_pool
from resources.compute import ComputeResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.policy import PolicyResource
from resources.sources import SourceRegistryResource


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", [config["source"]])
    resources = {
        "lakefs": LakeFSResource(**config["lakefs"]),
        "sources": SourceRegistryResource(path=config["registry"], cache_dir=config["cache_dir"],
                                          s3=S3Resource(**config["s3"])),
        "policy": PolicyResource(path=""),
        "optouts": OptOutResource(path=config["optouts"]),
        "compute": ComputeResource(),
    }
    result = materialize([raw_pool, clips], selection=[clips], partition_key=config["source"],
                         resources=resources, instance=instance, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

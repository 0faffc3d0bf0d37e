"""Resources as deployed: every endpoint and credential comes from the environment.

`.env` at the project root holds the local-development values (the local lakeFS started by
`vcurate lakefs start`); production sets the same variables to the real lakeFS and S3.
"""

from __future__ import annotations

import os

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from quality_checks.policy.resource import PolicyResource
from resources.captioners.resource import CaptionersResource
from resources.compute import ComputeResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource


def build_resources() -> dict[str, object]:
    return {
        "lakefs": LakeFSResource(
            endpoint=EnvVar("LAKECTL_SERVER_ENDPOINT_URL"),
            access_key_id=EnvVar("LAKECTL_CREDENTIALS_ACCESS_KEY_ID"),
            secret_access_key=EnvVar("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"),
            repository=EnvVar("VCURATE_LAKEFS_REPOSITORY"),
            storage_namespace=EnvVar("VCURATE_LAKEFS_STORAGE_NAMESPACE"),
        ),
        "sources": SourceRegistryResource(
            path=EnvVar("VCURATE_SOURCES"),
            cache_dir=EnvVar("VCURATE_CACHE_DIR"),
            s3=S3Resource(
                endpoint_url=EnvVar("VCURATE_S3_ENDPOINT_URL"),
                aws_access_key_id=EnvVar("VCURATE_S3_ACCESS_KEY_ID"),
                aws_secret_access_key=EnvVar("VCURATE_S3_SECRET_ACCESS_KEY"),
                region_name=EnvVar("VCURATE_S3_REGION"),
            ),
        ),
        "policy": PolicyResource(path=EnvVar("VCURATE_POLICY")),
        "optouts": OptOutResource(path=EnvVar("VCURATE_OPTOUT")),
        "captioners": CaptionersResource(),
        "compute": compute_from_env(),
    }


def compute_from_env() -> ComputeResource:
    """VCURATE_COMPUTE=local (default) | ray; VCURATE_RAY_ADDRESS unset starts a local Ray,
    "auto" or "host:port" connects. Both are optional, so they are read here with defaults
    (an EnvVar must be set)."""
    executor = os.environ.get("VCURATE_COMPUTE", "local")
    if executor not in ("local", "ray"):
        raise ValueError(f"VCURATE_COMPUTE: {executor!r} is not an executor; use 'local' or 'ray'")
    return ComputeResource(executor=executor, ray_address=os.environ.get("VCURATE_RAY_ADDRESS") or None)


def lakefs_from_env() -> LakeFSResource:
    """The same lakeFS resource, resolved now (for CLI commands that run outside a Dagster run)."""
    return LakeFSResource(
        endpoint=os.environ["LAKECTL_SERVER_ENDPOINT_URL"],
        access_key_id=os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
        repository=os.environ["VCURATE_LAKEFS_REPOSITORY"],
        storage_namespace=os.environ["VCURATE_LAKEFS_STORAGE_NAMESPACE"],
    )

"""Fixtures: one real lakeFS server per test session, a fresh repository per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize
from dagster_aws.s3 import S3Resource

from assets.raw_pool.asset import raw_pool
from orchestration.dev.lakefs_server import LocalLakeFS, free_port
from orchestration.dev.seaweedfs import LocalS3
from quality_checks.policy.resource import PolicyResource
from resources.captioners.resource import CaptionersResource
from resources.compute import ComputeResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource, write_empty_registry
from resources.sources import SourceRegistryResource

ACCESS_KEY = "AKIAIOSFOLVCURATETST"
SECRET_KEY = "vcurate-test-secret-0123456789abcdefghij"
STORE_KEY = "AKIASTOREVCURATETEST"  # the object store's own identity (lakeFS and Spark use it)
STORE_SECRET = "vcurate-store-secret-0123456789abcdefgh"


@pytest.fixture(scope="session")
def lakefs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLakeFS]:
    server = LocalLakeFS(
        data_dir=tmp_path_factory.mktemp("lakefs"),
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        port=free_port(),
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """A real S3-compatible store (SeaweedFS's S3 gateway) for lakeFS's S3 blockstore."""
    with LocalS3(data_dir=tmp_path_factory.mktemp("seaweedfs"), access_key_id=STORE_KEY,
                 secret_access_key=STORE_SECRET) as store:
        yield store


@pytest.fixture(scope="session")
def s3_lakefs_server(tmp_path_factory: pytest.TempPathFactory,
                     object_store: LocalS3) -> Iterator[LocalLakeFS]:
    """lakeFS on S3 storage, where its garbage collector can delete bytes."""
    server = LocalLakeFS(data_dir=tmp_path_factory.mktemp("lakefs-s3"), access_key_id=ACCESS_KEY,
                         secret_access_key=SECRET_KEY, port=free_port(), s3=object_store.blockstore())
    with server:
        yield server


def new_repository(server: LocalLakeFS) -> LakeFSResource:
    name = f"t-{uuid.uuid4().hex[:12]}"
    resource = LakeFSResource(endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                              secret_access_key=SECRET_KEY, repository=name,
                              storage_namespace=server.namespace(name))
    resource.create_repository()
    return resource


@pytest.fixture
def lakefs_resource(request: pytest.FixtureRequest, lakefs_server: LocalLakeFS) -> LakeFSResource:
    """A LakeFSResource on its own, new repository, so tests never see each other's commits.
    Created here, as first setup does: a materialization never creates a repository. A test that
    takes the `blockstore` argument runs twice: on the local blockstore and on S3 storage."""
    server = lakefs_server
    if "blockstore" in request.fixturenames and request.getfixturevalue("blockstore") == "s3":
        server = request.getfixturevalue("s3_lakefs_server")
    return new_repository(server)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "blockstore" in metafunc.fixturenames:
        metafunc.parametrize("blockstore", ["local", "s3"])


@pytest.fixture
def s3_resource(lakefs_server: LocalLakeFS) -> S3Resource:
    """dagster-aws's S3 resource pointed at the lakeFS S3 gateway (a real S3 API)."""
    return S3Resource(
        endpoint_url=lakefs_server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    return tmp_path


def write_registry(root: Path, sources: list[dict], name: str = "sources.yaml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


def write_policy(root: Path, **raw_pool: object) -> Path:
    path = root / "policy.yaml"
    path.write_text(yaml.safe_dump({"raw_pool": raw_pool}))
    return path


class Pipeline:
    """Runs raw_pool materializations the way Dagster does, on one instance."""

    def __init__(self, lakefs: LakeFSResource, s3: S3Resource, root: Path):
        self.lakefs = lakefs
        self.s3 = s3
        self.root = root
        self.instance = DagsterInstance.ephemeral()
        self.policy_path = ""
        self.optout_path = root / "optout.yaml"
        write_empty_registry(self.optout_path)  # the registry fails closed when missing

    def resources(self, registry: Path) -> dict[str, object]:
        return {
            "lakefs": self.lakefs,
            "sources": SourceRegistryResource(path=str(registry), s3=self.s3,
                                              cache_dir=str(self.root / "cache")),
            "policy": PolicyResource(path=self.policy_path),
            "optouts": OptOutResource(path=str(self.optout_path)),
            "captioners": CaptionersResource(),
            "compute": ComputeResource(),
        }

    def run(self, registry: Path, source: str, raise_on_error: bool = True):
        self.instance.add_dynamic_partitions("source", [source])
        return materialize(
            [raw_pool], partition_key=source, resources=self.resources(registry),
            instance=self.instance, raise_on_error=raise_on_error,
        )


@pytest.fixture
def pipeline(lakefs_resource: LakeFSResource, s3_resource: S3Resource, workdir: Path) -> Pipeline:
    return Pipeline(lakefs_resource, s3_resource, workdir)


def materialization_metadata(result) -> dict[str, object]:
    events = result.get_asset_materialization_events()
    assert len(events) == 1
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

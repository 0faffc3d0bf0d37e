"""The lakeFS resource: one repository holds every tier; writes go through write-audit-publish.

A materialization of (tier, source) writes on its own branch, commits there, lets the caller
audit what the branch holds, and merges into `main` only when the audit passes. A failed
audit leaves the branch in place for inspection and `main` untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import lakefs
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from lakefs.client import Client
from lakefs.exceptions import BadRequestException, NotFoundException

from resources.locks import LOCK_WAIT_S, partition_lock_name, repository_lock
from resources.redact import strip_userinfo

# lakeFS branch ids allow letters, digits, '_' and '-' only (no '/').
_BRANCH_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Repositories seen to exist in this process: saves a round trip per call.
_KNOWN_REPOSITORIES: set[tuple[str, str]] = set()


class ConcurrentPublishError(RuntimeError):
    """Another writer published the same tier partition while this one ran; nothing was merged."""


class RepositoryMissingError(RuntimeError):
    """The configured repository is not on the server. Only first setup creates one: a
    materialization that created it would hide lost lakeFS data behind an empty history."""


@dataclass(frozen=True)
class CommitMetadata:
    """What every tier commit and merge records, so a commit explains itself."""

    run_id: str
    asset: str
    partition: str
    code_version: str
    config_hash: str
    upstream_commits: Mapping[str, str] = field(default_factory=dict)

    def as_lakefs(self) -> dict[str, str]:
        return {
            "dagster_run_id": self.run_id,
            "dagster_asset": self.asset,
            "dagster_partition": self.partition,
            "code_version": self.code_version,
            "config_hash": self.config_hash,
            "upstream_commits": json.dumps(dict(self.upstream_commits), sort_keys=True),
        }


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet: the same table always gives the same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class WapBranch:
    """One write-audit-publish branch. Write, `commit()`, audit, then `publish()`."""

    def __init__(self, resource: LakeFSResource, branch: lakefs.Branch, metadata: CommitMetadata):
        self._resource = resource
        self.branch = branch
        self.metadata = metadata
        self.commit_id: str | None = None

    @property
    def name(self) -> str:
        return self.branch.id

    def write_bytes(self, path: str, data: bytes, content_type: str | None = None) -> None:
        self.branch.object(path).upload(data, mode="wb", pre_sign=False, content_type=content_type)

    def write_table(self, path: str, table: pa.Table) -> None:
        self.write_bytes(path, table_to_parquet_bytes(table), "application/vnd.apache.parquet")

    def list_paths(self, prefix: str) -> list[str]:
        return self._resource.list_paths(prefix, ref=self.name)

    def delete_paths(self, paths: list[str]) -> None:
        for start in range(0, len(paths), 1000):  # the API takes at most 1000 per call
            self.branch.delete_objects(paths[start : start + 1000])

    def read_table(self, path: str) -> pa.Table:
        table = self._resource.read_table(path, ref=self.name)
        if table is None:
            raise FileNotFoundError(f"{path} is not on branch {self.name}")
        return table

    def has_changes(self) -> bool:
        return any(True for _ in self.branch.uncommitted(max_amount=1))

    def commit(self, message: str) -> str | None:
        """Commit staged writes; None when they changed nothing (nothing to publish)."""
        if not self.has_changes():
            return None
        ref = self.branch.commit(message, metadata=self.metadata.as_lakefs())
        self.commit_id = ref.get_commit().id
        return self.commit_id

    def revert(self, commit_id: str) -> str:
        """Revert one commit (a merge relative to its first parent) on this branch; it counts as
        committed work, so `publish()` merges it."""
        self.commit_id = self._resource.revert(commit_id, branch=self.name)
        return self.commit_id

    def publish(self, message: str, extra_metadata: Mapping[str, str] | None = None) -> str:
        """Merge the audited branch into the default branch, delete it, return the merge commit.

        `extra_metadata` is recorded on the merge commit next to the run's CommitMetadata. A tier
        partition's publish holds that partition's lock and merges only when main gained no other
        publish of the partition (a run, a rollback) since this branch was made: merging over it
        would undo it unseen, or half conflict. ConcurrentPublishError then, nothing merged.
        """
        if self.commit_id is None:
            raise RuntimeError(f"branch {self.name}: nothing committed to publish")
        metadata = {**(extra_metadata or {}), **self.metadata.as_lakefs(), "wap_branch": self.name,
                    "wap_commit": self.commit_id}
        asset, partition = self.metadata.asset, self.metadata.partition
        if not partition:  # release, audit, purge: no tier partition of their own to guard
            merge_commit = self.branch.merge_into(self._resource.default_branch, message=message,
                                                  metadata=metadata)
        else:
            with self._resource.lock(partition_lock_name(asset, partition), what=f"publish {self.name}"):
                rival = self._published_since_branching()
                if rival is None:
                    merge_commit = self.branch.merge_into(self._resource.default_branch, message=message,
                                                          metadata=metadata)
            if rival is not None:  # raised outside the lock, which has been let go
                meta = rival.metadata or {}
                raise ConcurrentPublishError(
                    f"{asset} {partition}: not published, main changed under this run: commit "
                    f"{rival.id[:12]} ({rival.message[:80]}, run {meta.get('dagster_run_id', '')[:8]}) "
                    f"published {asset} {partition} after branch {self.name} was made; main is "
                    f"untouched and the branch is left for inspection; materialize the partition again")
        self.branch.delete()
        return merge_commit

    def _published_since_branching(self) -> lakefs.Commit | None:
        """The newest publish of this branch's (asset, partition) merged into main after the
        branch was made from it, if any."""
        api = self._resource.client().sdk_client.refs_api
        base = api.find_merge_base(self._resource.repository, self.name,
                                   self._resource.default_branch).base_commit_id
        for commit in self._resource.first_parent_log():
            if commit.id == base:
                return None
            meta = commit.metadata or {}
            if (len(commit.parents) > 1 and meta.get("dagster_asset") == self.metadata.asset
                    and meta.get("dagster_partition") == self.metadata.partition):
                return commit
        return None

    def discard(self) -> None:
        self.branch.delete()


class LakeFSResource(ConfigurableResource):
    """A lakeFS repository holding every tier. Endpoint and credentials come from EnvVar."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    repository: str = "vcurate"
    storage_namespace: str = "local://vcurate"
    default_branch: str = "main"
    ui_url: str = ""

    def client(self) -> Client:
        return Client(host=self.endpoint, username=self.access_key_id,
                      password=self.secret_access_key)

    def repo(self) -> lakefs.Repository:
        """The repository; RepositoryMissingError when it is not on the server (never created here)."""
        if (self.endpoint, self.repository) in _KNOWN_REPOSITORIES:
            return lakefs.Repository(self.repository, client=self.client())
        return self.require_repository()

    def require_repository(self) -> lakefs.Repository:
        """The repository, checked on the server now (not from this process's cache)."""
        repo = lakefs.Repository(self.repository, client=self.client())
        key = (self.endpoint, self.repository)
        try:
            repo.properties  # noqa: B018 - a GET that raises NotFound for a missing repository
        except NotFoundException:
            _KNOWN_REPOSITORIES.discard(key)
            raise RepositoryMissingError(self.missing_repository_message()) from None
        _KNOWN_REPOSITORIES.add(key)
        return repo

    def create_repository(self) -> bool:
        """First setup only (`vcurate lakefs start` on a new local server, `vcurate lakefs
        create-repository`, test and bench fixtures): create the repository with an empty
        default branch. True when it was created, False when it already existed."""
        repo = lakefs.Repository(self.repository, client=self.client())
        try:
            repo.properties  # noqa: B018
            created = False
        except NotFoundException:
            repo.create(storage_namespace=self.storage_namespace, default_branch=self.default_branch,
                        exist_ok=True)
            created = True
        _KNOWN_REPOSITORIES.add((self.endpoint, self.repository))
        return created

    def missing_repository_message(self) -> str:
        return (f"lakeFS repository '{self.repository}' does not exist on "
                f"{strip_userinfo(self.endpoint)}. On a "
                f"first setup create it with `vcurate lakefs create-repository` (`vcurate lakefs "
                f"start` does so for a new local server). If it existed before, the lakeFS data was "
                f"lost: restore lakeFS's database and the storage namespace {self.storage_namespace} "
                f"rather than starting an empty repository, which would lose its history, tags "
                f"and audit records.")

    def head(self, ref: str | None = None) -> str:
        return self.repo().ref(ref or self.default_branch).get_commit().id

    def read_bytes(self, path: str, ref: str | None = None) -> bytes | None:
        obj = self.repo().ref(ref or self.default_branch).object(path)
        try:
            with obj.reader(mode="rb", pre_sign=False) as reader:
                return reader.read()
        except NotFoundException:
            return None

    def list_paths(self, prefix: str, ref: str | None = None) -> list[str]:
        """Every object path under `prefix` at a ref (default branch when None)."""
        return [obj.path for obj in self.repo().ref(ref or self.default_branch).objects(prefix=prefix)]

    def read_table(self, path: str, ref: str | None = None) -> pa.Table | None:
        """A Parquet table at any ref (branch, commit or tag); None when the path is absent."""
        data = self.read_bytes(path, ref)
        return None if data is None else pq.read_table(io.BytesIO(data))

    def start_wap(self, tier: str, source: str, metadata: CommitMetadata, prefix: str = "wap") -> WapBranch:
        """Create `<prefix>-<tier>-<source>-<run>` from the default branch (fresh on retries)."""
        name = _BRANCH_UNSAFE.sub("_", f"{prefix}-{tier}-{source}-{metadata.run_id[:8]}")
        repo = self.repo()
        branch = repo.branch(name)
        with contextlib.suppress(NotFoundException):  # a retry restarts from main
            branch.delete()
        branch.create(source_reference=self.default_branch)
        return WapBranch(self, branch, metadata)

    def lock(self, name: str, *, wait_s: float = LOCK_WAIT_S,
             what: str = "") -> contextlib.AbstractContextManager[None]:
        """Hold lock `name` in this repository, across processes and machines (resources/locks.py)."""
        return repository_lock(self.repo(), self.default_branch, name, wait_s=wait_s, what=what)

    def branch_exists(self, name: str) -> bool:
        try:
            self.repo().branch(name).get_commit()
            return True
        except NotFoundException:
            return False

    def revert(self, commit_id: str, branch: str | None = None) -> str:
        """Revert one commit on a branch (merge commits relative to their first parent)."""
        repo = self.repo()
        parents = repo.commit(commit_id).get_commit().parents
        target = repo.branch(branch or self.default_branch)
        return target.revert(commit_id, parent_number=1 if len(parents) > 1 else 0).id

    def tag(self, name: str, ref: str | None = None) -> str:
        tag = self.repo().tag(name).create(ref or self.default_branch)
        return tag.get_commit().id

    def log(self, ref: str | None = None, max_amount: int = 20) -> list[lakefs.Commit]:
        return list(self.repo().ref(ref or self.default_branch).log(max_amount=max_amount))

    def first_parent_log(self, ref: str | None = None) -> Iterator[lakefs.Commit]:
        """The commits of a branch's own line, newest first: from a merge only its first parent
        (the branch before the merge), never the merged branch's commits."""
        expected: str | None = None
        for commit in self.repo().ref(ref or self.default_branch).log(first_parent=True):
            # the chain check keeps this right on a server that ignores first_parent
            if expected is not None and commit.id != expected:
                continue
            yield commit
            if not commit.parents:
                return
            expected = commit.parents[0]

    def resolve(self, ref: str) -> str | None:
        """The commit id a ref (commit id, branch or tag) names; None when it names nothing."""
        try:
            return self.repo().ref(ref).get_commit().id
        except (NotFoundException, BadRequestException):  # BadRequest: not a valid ref name
            return None

    def changed_paths(self, ref: str, other: str, prefix: str | None = None) -> list[str]:
        """Paths (under `prefix` when given) whose objects differ between two refs: a two-way
        comparison of their contents, whatever the history between them."""
        changes = self.repo().ref(ref).diff(other, prefix=prefix, type="two_dot")
        return [change.path for change in changes]

    def commit_url(self, commit_id: str) -> str:
        return f"{self._ui_base()}/repositories/{self.repository}/commits/{commit_id}"

    def object_url(self, path: str, ref: str) -> str:
        return f"{self._ui_base()}/repositories/{self.repository}/object?ref={ref}&path={path}"

    def folder_url(self, prefix: str, ref: str) -> str:
        """The lakeFS UI's listing of the objects under `prefix` at `ref`."""
        return f"{self._ui_base()}/repositories/{self.repository}/objects?ref={ref}&path={prefix}"

    def _ui_base(self) -> str:
        # These links land in Dagster metadata and CLI output: never with credentials in them.
        return strip_userinfo(self.ui_url or self.endpoint).rstrip("/")

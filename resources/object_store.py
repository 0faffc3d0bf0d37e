"""The S3 store under lakeFS's S3 blockstore, reached directly: what the physical takedown
checks (an address gone) and where lakeFS's garbage collector leaves its reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def _split(address: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    bucket, _, key = address.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    @cached_property
    def client(self):
        """One boto3 client per store (path-style addressing: SeaweedFS, MinIO and AWS all take it)."""
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))

    def exists(self, address: str) -> bool:
        bucket, key = _split(address)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, address: str) -> None:
        bucket, key = _split(address)
        self.client.delete_object(Bucket=bucket, Key=key)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix` in `bucket`, by key: what a physical scan reads."""
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                out[item["Key"]] = self.client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return out

    def gc_summaries(self, namespace: str, reports: str) -> dict[str, dict]:
        """The GC run summaries under `reports` in a storage namespace (`s3://bucket/prefix`), by
        run id."""
        bucket, prefix = _split(namespace)
        found = self.objects(bucket, f"{prefix.rstrip('/')}/{reports}")
        summaries = [json.loads(blob) for key, blob in found.items() if key.endswith("/summary.json")]
        return {s["run_id"]: s for s in summaries}

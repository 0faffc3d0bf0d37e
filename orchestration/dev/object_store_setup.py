"""`python -m orchestration.dev.object_store_setup`: provision what the S3-backed setup needs,
once (cached): the SeaweedFS binary, built from its Go module, and lakeFS's Spark GC jars."""

from orchestration.dev.seaweedfs import find_weed_binary
from resources.spark_gc import gc_jars

if __name__ == "__main__":
    print(f"[s3] SeaweedFS: {find_weed_binary()}", flush=True)
    print(f"[s3] lakeFS GC client jars: {gc_jars()}", flush=True)

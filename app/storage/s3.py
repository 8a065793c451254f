"""The S3 backend: any S3-compatible store (MinIO, Ceph RGW, the cloud providers' object
storage) through boto3, one bucket, every key under a prefix per kind of file.

Objects are private: nothing is ever written with an ACL or a policy that opens it, and the API
streams each download after its own access checks (no presigned URLs). Large files go up as
multipart uploads (s3transfer), which S3 makes visible only when complete; a failed upload is
aborted by s3transfer, and one a killed process left is aborted by the sweep
(`abort_stale_uploads`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from app.storage.base import CHUNK_SIZE, ObjectInfo, StoredObject, check_key, check_prefix

_MISSING = {"404", "NoSuchKey", "NotFound"}
# Parts of 16 MiB, 4 at a time: a 1 GB clue batch is 64 parts, 64 MiB of buffers at most.
TRANSFER = TransferConfig(
    multipart_threshold=16 * CHUNK_SIZE, multipart_chunksize=16 * CHUNK_SIZE, max_concurrency=4
)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = check_prefix(prefix) if prefix else ""

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, path: str | os.PathLike, *, move: bool = False) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key), Config=TRANSFER)
        if move:
            Path(path).unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        return self.open(key).read()

    def open(self, key: str) -> StoredObject:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from None
            raise
        return StoredObject(key, answer["ContentLength"], answer["Body"], answer.get("ETag"))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(check_prefix(prefix))]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a call
            batch = [{"Key": self.prefix + key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                yield ObjectInfo(key, item["Size"], item["LastModified"])

    def abort_stale_uploads(self, before: dt.datetime) -> int:
        count = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] < before:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    count += 1
        return count


def make_client(
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    addressing_style: str = "auto",
) -> Any:
    """A boto3 S3 client. Without explicit keys, boto3's own chain decides (AWS_* variables,
    ~/.aws, an instance or pod role). Clients are thread-safe; one per process is shared."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=BotoConfig(
            s3={"addressing_style": addressing_style},
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
        ),
    )

"""What only the S3 backend has to show: private objects, the prefix it keeps to, and the
multipart uploads a killed process leaves behind."""

from __future__ import annotations

import datetime as dt

from app.storage import S3Store
from tests.fakes.s3 import S3Server


def test_objects_are_private_to_the_account(s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = s3_server.new_bucket()
    S3Store(client, bucket, "media/").put("a/b.jpg", b"x")

    grants = client.get_object_acl(Bucket=bucket, Key="media/a/b.jpg")["Grants"]

    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert grants[0]["Grantee"]["Type"] == "CanonicalUser"  # the owner; no AllUsers, no URI


def test_a_store_sees_only_its_prefix(s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = s3_server.new_bucket()
    media, exports = S3Store(client, bucket, "media/"), S3Store(client, bucket, "exports/")
    media.put("b1/x.jpg", b"photo")
    exports.put("b1/tips.csv", b"csv")

    assert [i.key for i in media.list()] == ["b1/x.jpg"]
    assert exports.delete_prefix("b1/") == 1
    assert media.get("b1/x.jpg") == b"photo"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["media/b1/x.jpg"]


def test_an_unfinished_multipart_upload_is_aborted_once_stale(s3_server: S3Server) -> None:
    client = s3_server.client()
    bucket = s3_server.new_bucket()
    store = S3Store(client, bucket, "exports/")
    # What a worker killed in the middle of uploading a batch.zip leaves: an upload begun, one
    # part sent, never completed (no object exists, yet the part is kept and billed).
    upload = client.create_multipart_upload(Bucket=bucket, Key="exports/b1/batch.zip")
    client.upload_part(
        Bucket=bucket,
        Key="exports/b1/batch.zip",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * 1024,
    )
    assert not store.exists("b1/batch.zip")

    # (moto dates every upload 2010-11-10, so "not stale yet" cannot be shown against it.)
    assert store.abort_stale_uploads(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 1

    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

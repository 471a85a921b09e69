"""Clients of a running ``smlocal api``: boto3 sessions whose every client points at it, the SDK's Session.

The SDK makes some clients itself (``logs`` while it waits, ``sts`` at a fixed AWS URL for the default
bucket), so pointing one client is not enough: ``LocalBotoSession`` gives *every* client and resource
the local endpoint, and ``sagemaker_session`` adds a default bucket made in the local S3.
"""
from __future__ import annotations

import os

import boto3

DEFAULT_URL = "http://127.0.0.1:4566"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "smlocal", "aws_secret_access_key": "smlocal"}  # any value: nothing checks them
DEFAULT_BUCKET = "sagemaker-smlocal"


def environment(url: str, region: str = REGION) -> dict[str, str]:
    """The variables that point boto3, the SDK and the AWS CLI at ``url``."""
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"], "AWS_DEFAULT_REGION": region}


class LocalBotoSession(boto3.session.Session):
    """A boto3 session whose clients and resources all use ``endpoint_url`` (an AWS URL given
    explicitly, as the SDK does for STS, is replaced by it too)."""

    def __init__(self, endpoint_url: str, region_name: str = REGION, **credentials):
        super().__init__(region_name=region_name, **(credentials or CREDENTIALS))
        self.endpoint_url = endpoint_url

    def _local(self, kwargs: dict) -> dict:
        given = kwargs.get("endpoint_url")
        if not given or "amazonaws.com" in given:
            kwargs["endpoint_url"] = self.endpoint_url
        return kwargs

    def client(self, *args, **kwargs):
        return super().client(*args, **self._local(kwargs))

    def resource(self, *args, **kwargs):
        return super().resource(*args, **self._local(kwargs))


def sagemaker_session(url: str | None = None, region: str = REGION, default_bucket: str = DEFAULT_BUCKET):
    """A ``sagemaker.Session`` wired to ``smlocal api`` at ``url`` (default ``$AWS_ENDPOINT_URL``, else
    port 4566), with ``default_bucket`` created in the local S3."""
    import sagemaker

    url = url or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_URL
    boto_session = LocalBotoSession(url, region)
    s3 = boto_session.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if default_bucket not in existing:
        s3.create_bucket(Bucket=default_bucket)
    return sagemaker.Session(boto_session=boto_session, default_bucket=default_bucket)

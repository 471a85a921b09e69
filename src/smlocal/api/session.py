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


def environment(url: str, region: str = REGION, s3_endpoint_url: str | None = None) -> dict[str, str]:
    """The variables that point boto3, the SDK and the AWS CLI at ``url`` (S3 at ``s3_endpoint_url``
    when the server was given one)."""
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"]}
    if s3_endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint_url
    env["AWS_DEFAULT_REGION"] = region  # last: the banner's last line
    return env


class LocalBotoSession(boto3.session.Session):
    """A boto3 session whose clients and resources all use ``endpoint_url`` (an AWS URL given
    explicitly, as the SDK does for STS, is replaced by it too); S3 uses ``s3_endpoint_url`` when
    the server keeps S3 elsewhere (``smlocal api --s3-endpoint-url``)."""

    def __init__(self, endpoint_url: str, region_name: str = REGION, s3_endpoint_url: str | None = None,
                 **credentials):
        super().__init__(region_name=region_name, **(credentials or CREDENTIALS))
        self.endpoint_url, self.s3_endpoint_url = endpoint_url, s3_endpoint_url

    def _local(self, service: str, kwargs: dict) -> dict:
        given = kwargs.get("endpoint_url")
        if not given or "amazonaws.com" in given:
            s3_elsewhere = service == "s3" and self.s3_endpoint_url
            kwargs["endpoint_url"] = self.s3_endpoint_url if s3_elsewhere else self.endpoint_url
        return kwargs

    def client(self, service_name, *args, **kwargs):
        return super().client(service_name, *args, **self._local(service_name, kwargs))

    def resource(self, service_name, *args, **kwargs):
        return super().resource(service_name, *args, **self._local(service_name, kwargs))


def sagemaker_session(url: str | None = None, region: str = REGION, default_bucket: str = DEFAULT_BUCKET,
                      s3_endpoint_url: str | None = None):
    """A ``sagemaker.Session`` wired to ``smlocal api`` at ``url`` (default ``$AWS_ENDPOINT_URL``, else
    port 4566), with ``default_bucket`` created in its S3: the embedded one, or ``s3_endpoint_url``
    (default ``$AWS_ENDPOINT_URL_S3``) where the server was started with ``--s3-endpoint-url``."""
    import sagemaker

    url = url or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_URL
    boto_session = LocalBotoSession(url, region, s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3"))
    s3 = boto_session.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if default_bucket not in existing:
        s3.create_bucket(Bucket=default_bucket)
    return sagemaker.Session(boto_session=boto_session, default_bucket=default_bucket)

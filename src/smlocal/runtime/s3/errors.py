"""S3 failures as smlocal errors: botocore exceptions -> a CustomerError (or PlatformError for S3's own 5xx).

Every message names the bucket/key, the cause and what to do. Pure: looks only at the exception;
botocore is imported when an exception is translated, never at import time.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from smlocal.errors import CustomerError, PlatformError, SmlocalError
from smlocal.runtime.s3.uri import parse_s3_uri

# the IAM permission an operation needs, for "access denied" hints
_PERMISSION = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
_CREDENTIALS_REJECTED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                         "TokenRefreshRequired", "ExpiredTokenException", "InvalidClientTokenId"}
_ACCESS_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IllegalLocationConstraintException"}
_RETRY_LATER = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}
_MISSING_KEY = ("NoSuchKey", "404", "NotFound")
_ENDPOINT_HINT = "for a custom S3 endpoint, AWS_ENDPOINT_URL_S3 or --s3-endpoint-url"


def translate_error(exc: BaseException, uri: str, doing: str = "read", context: str = "") -> SmlocalError | None:
    """Map a botocore exception raised while ``doing`` something to ``uri`` to a smlocal error.

    Returns None for exceptions that are not botocore's.
    The message reads ``Cannot <doing> <uri><context>: <cause>. <what to do>``."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover
        return None
    where = f"Cannot {doing} {uri}{context}"
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return CustomerError(
            f"{where}: no AWS credentials were found ({exc}). Configure credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, `aws configure` or `aws sso login`), or give a local path "
            "instead of an s3:// URI.")
    credential_errors = tuple(getattr(bce, name) for name in (
        "CredentialRetrievalError", "TokenRetrievalError", "SSOError", "UnknownCredentialError")
        if hasattr(bce, name))
    if isinstance(exc, credential_errors):
        return CustomerError(f"{where}: the AWS credentials could not be loaded ({exc}). Refresh them "
                             "(for SSO: `aws sso login`) or pick another profile with AWS_PROFILE.")
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError)):
        return CustomerError(f"{where}: cannot connect to S3 ({exc}). Check the network and, "
                             f"{_ENDPOINT_HINT}.")
    if isinstance(exc, bce.ParamValidationError):
        return CustomerError(f"{where}: {exc}")
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, uri, where)
    if isinstance(exc, bce.BotoCoreError):
        return PlatformError(f"{where}: {exc}. Retry the job.")
    return None


def _client_error(exc, uri: str, where: str) -> SmlocalError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = error.get("Message") or code
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", "") or ""
    bucket, key = parse_s3_uri(uri)
    if code == "NoSuchBucket" or (code in ("404", "NotFound") and (not key or operation == "HeadBucket")):
        return CustomerError(f"{where}: the bucket '{bucket}' does not exist (NoSuchBucket). Check the bucket "
                             f"name, the credentials' account and, {_ENDPOINT_HINT}.")
    if code in _MISSING_KEY:
        return CustomerError(f"{where}: the object '{key}' does not exist in bucket '{bucket}' (NoSuchKey). "
                             "Check the key (S3 keys are case-sensitive).")
    if code in _CREDENTIALS_REJECTED:
        return CustomerError(f"{where}: S3 rejected the AWS credentials ({code}: {message}). Check or refresh "
                             "them (`aws configure`, `aws sso login`, AWS_PROFILE).")
    if code in _ACCESS_DENIED or (status == 403 and code not in _CREDENTIALS_REJECTED):
        permission = _PERMISSION.get(operation, "s3:GetObject/s3:ListBucket")
        resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
        return CustomerError(f"{where}: access denied ({code or status}: {message}). The credentials in use "
                             f"are not allowed to call {operation or 'this operation'} on bucket '{bucket}'; grant "
                             f"{permission} on {resource} or use other credentials (AWS_PROFILE).")
    if code in _WRONG_REGION or status == 301:
        return CustomerError(f"{where}: the bucket '{bucket}' is in another region ({code}: {message}). "
                             "Set AWS_REGION / AWS_DEFAULT_REGION to the bucket's region.")
    if code == "InvalidBucketName":
        return CustomerError(f"{where}: '{bucket}' is not a valid bucket name ({message}).")
    if code == "PreconditionFailed" or status == 412:
        return CustomerError(f"{where}: the object changed while the job was reading it (its ETag no longer "
                             "matches the listing). Do not modify a channel's data while a job runs; rerun.")
    if code == "InvalidObjectState":
        return CustomerError(f"{where}: the object is archived ({message}); restore it (Glacier) first.")
    if code in _RETRY_LATER or (isinstance(status, int) and status >= 500):
        return PlatformError(f"{where}: S3 answered {code or status} ({message}). Retry later.")
    return CustomerError(f"{where}: {code or status}: {message}")


@contextmanager
def s3_errors(uri: str, doing: str = "read", context: str = "") -> Iterator[None]:
    """Re-raise botocore exceptions from the block as smlocal errors naming ``uri`` (see translate_error)."""
    try:
        yield
    except SmlocalError:
        raise
    except Exception as exc:
        mapped = translate_error(exc, uri, doing, context)
        if mapped is None:
            raise
        raise mapped from exc


def is_missing_key(exc: BaseException) -> bool:
    """S3 answered "no such key" (a bare 404 for HeadObject)."""
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in _MISSING_KEY

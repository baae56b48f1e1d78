"""`s3://bucket/key` through boto3; `AWS_ENDPOINT_URL` points it at MinIO or another S3-compatible store.

Credentials and region come from the context's env (the operator's credentials Secret); without keys
there, boto3's own chain applies (e.g. IRSA web identity), and with no credentials at all the request
goes unsigned, for public buckets. Retries are the caller's, so botocore's are switched off.
"""

from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager

import boto3
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from mlmodel_contract import pod
from mlmodel_server.fetch.context import CHUNK_SIZE, FetchContext, check_complete
from mlmodel_server.fetch.errors import AccessDenied, FetchError, NotFound, Truncated
from mlmodel_server.fetch.uris import Location

_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_DENIED_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "403",
}
_RETRYABLE_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"}


def stream(location: Location, context: FetchContext) -> Generator[bytes, None, None]:
    label = location.redacted
    with _classified(context, label):
        response = _client(context).get_object(Bucket=location.host, Key=location.path)
    announced = response.get("ContentLength")
    context.check_announced_size(announced, label)
    received = 0
    with closing(response["Body"]) as body:
        try:
            for chunk in body.iter_chunks(CHUNK_SIZE):
                received += len(chunk)
                yield chunk
                context.check_deadline(label)
        except ReadTimeoutError:
            raise context.timeout(label) from None
        except (IncompleteReadError, ResponseStreamingError):
            raise Truncated(f"truncated body: got {received} of {announced} bytes ({label})") from None
    check_complete(received, announced, label)


def list_prefix(location: Location, context: FetchContext, max_objects: int) -> list[tuple[str, int]]:
    """(key, size) of every object under the prefix `location.path`, in key order; stops listing past
    `max_objects` (the caller refuses that many). Keys ending in "/" (folder markers) are left out."""
    label = location.redacted
    objects: list[tuple[str, int]] = []
    with _classified(context, label):
        pages = _client(context).get_paginator("list_objects_v2").paginate(Bucket=location.host, Prefix=location.path)
        for page in pages:
            context.check_deadline(label)
            objects.extend((item["Key"], int(item["Size"])) for item in page.get("Contents", ()))
            if len(objects) > max_objects:
                break
    return sorted((key, size) for key, size in objects if not key.endswith("/"))


@contextmanager
def _classified(context: FetchContext, label: str) -> Iterator[None]:
    """botocore's exceptions as the fetcher's failures."""
    try:
        yield
    except ClientError as error:
        raise _classify(error, label) from None
    except PartialCredentialsError as error:
        missing = error.kwargs.get("cred_var")
        raise AccessDenied(f"access denied: incomplete S3 credentials, {missing} missing ({label})") from None
    except (ConnectTimeoutError, ReadTimeoutError):
        raise context.timeout(label) from None
    except EndpointConnectionError:
        raise FetchError(f"cannot connect to the S3 endpoint ({label})", retryable=True) from None
    except BotoCoreError as error:
        raise FetchError(f"S3 request failed: {type(error).__name__} ({label})", retryable=True) from None


def _client(context: FetchContext) -> BaseClient:
    env = context.env
    session = boto3.session.Session(
        aws_access_key_id=env.get(pod.AWS_ACCESS_KEY_ID) or None,
        aws_secret_access_key=env.get(pod.AWS_SECRET_ACCESS_KEY) or None,
        aws_session_token=env.get(pod.AWS_SESSION_TOKEN) or None,
        region_name=env.get(pod.AWS_REGION) or env.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    endpoint = env.get(pod.AWS_ENDPOINT_URL) or None
    remaining = max(context.deadline.remaining(), 0.001)
    config = Config(
        connect_timeout=remaining,
        read_timeout=remaining,
        retries={"total_max_attempts": 1},
        # Virtual-host addressing would need DNS for `<bucket>.<endpoint host>`, which MinIO setups lack.
        s3={"addressing_style": "path" if endpoint else "auto"},
        signature_version=UNSIGNED if session.get_credentials() is None else None,
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


def _classify(error: ClientError, label: str) -> Exception:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _NOT_FOUND_CODES or status == 404:
        return NotFound(f"not found: {code or status} for {label}")
    if code in _DENIED_CODES or status in (401, 403):
        return AccessDenied(f"access denied: {code or status} for {label}")
    if code in _RETRYABLE_CODES or status >= 500:
        return FetchError(f"S3 error {code or status} for {label}", retryable=True)
    return FetchError(f"S3 error {code or status} for {label}")

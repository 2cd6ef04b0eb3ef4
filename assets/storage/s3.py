"""Publishing to S3 or an S3-compatible store (MinIO, Ceph, R2) with boto3.

Credentials come from the standard AWS chain (environment, shared config,
instance or container role), never from this project's configuration. Every
upload carries its SHA-256 so S3 rejects an object whose bytes were damaged
on the way (``BadDigest``); a single ``put_object`` is atomic, as
:class:`assets.storage.targets.Target` requires.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from assets.hashing import CHUNK_BYTES
from assets.storage.targets import Target, TargetError, check_key

#: ``delete_objects`` accepts at most this many keys per request.
_DELETE_BATCH = 1000
#: The largest object one ``put_object`` or ``copy_object`` stores (5 GiB).
MAX_SINGLE_OBJECT = 5 * 1024**3
#: Error codes S3 (and compatible stores) use for a missing object.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def normalise_prefix(prefix: str) -> str:
    """``""`` stays empty; ``a/b`` and ``/a/b/`` become ``a/b/``; unsafe prefixes are refused."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    try:
        check_key(stripped)
        if any(part in {"", "."} for part in stripped.split("/")):
            raise TargetError(stripped)
    except TargetError:
        raise TargetError(f"refusing unsafe S3 prefix {prefix!r}") from None
    return stripped + "/"


def configured_endpoint() -> str | None:
    """The S3 endpoint boto3 would take from the environment (``AWS_ENDPOINT_URL[_S3]``)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else type(exc).__name__


def _is_aws_endpoint(endpoint_url: str) -> bool:
    host = urlsplit(endpoint_url).hostname or ""
    return host.endswith(".amazonaws.com") or host == "amazonaws.com"


class S3Target(Target):
    """Objects under ``prefix`` in one bucket; keys are relative to the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise TargetError(f"invalid S3 bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        if client is None:
            endpoint_url = endpoint_url or configured_endpoint()
            client = self._make_client(endpoint_url, region)
        elif endpoint_url is None:
            client_endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
            if client_endpoint and not _is_aws_endpoint(client_endpoint):
                endpoint_url = client_endpoint
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.client = client
        self.location = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @staticmethod
    def _make_client(endpoint_url: str | None, region: str | None) -> Any:
        import boto3
        from botocore.config import Config

        # Path-style addressing works with every S3-compatible store (and with
        # endpoints given as IP addresses); AWS itself keeps virtual hosts.
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def _object_key(self, key: str) -> str:
        # S3 keys are literal strings: "a/./b" or "a//b" would be a different object
        # from "a/b" (and unreachable by URL), so refuse them as well.
        if any(part in {"", "."} for part in check_key(key).split("/")):
            raise TargetError(f"refusing unsafe key {key!r}")
        return self.prefix + key

    def _fail(self, action: str, key: str, exc: Exception) -> TargetError:
        return TargetError(f"{self.location}: cannot {action} {key}: {_error_code(exc)} ({exc})")

    def read_bytes(self, key: str) -> bytes | None:
        stream = self.read_stream(key)
        if stream is None:
            return None
        try:
            return b"".join(stream)
        except Exception as exc:  # botocore/urllib3 errors while reading the body
            raise self._fail("read", key, exc) from exc

    def read_stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes] | None:
        """The object's bytes in chunks (for large files), or None when there is no such object."""
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self._object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise self._fail("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("read", key, exc) from exc
        body = response["Body"]
        return iter(body.iter_chunks(chunk_size))

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._put(key, data, hashlib.sha256(data).digest(), content_type)

    def write_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """One ``put_object`` streaming the file (S3 checks its SHA-256, as for bytes)."""
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
        size = path.stat().st_size
        if size > MAX_SINGLE_OBJECT:
            raise TargetError(
                f"{self.location}: cannot write {key}: {size:,} bytes is more than one upload "
                f"holds ({MAX_SINGLE_OBJECT:,})"
            )
        with path.open("rb") as body:
            self._put(key, body, digest.digest(), content_type)

    def _put(self, key: str, body: Any, sha256: bytes, content_type: str | None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._object_key(key),
            "Body": body,
            # S3 recomputes the SHA-256 of what it received and refuses the
            # object (BadDigest) when it differs from ours.
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(sha256).decode("ascii"),
        }
        if content_type:
            arguments["ContentType"] = content_type
        try:
            self.client.put_object(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from exc

    def copy(self, source: str, key: str, content_type: str | None = None) -> None:
        """A server-side ``copy_object``: the bytes never leave the store."""
        from botocore.exceptions import BotoCoreError, ClientError

        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._object_key(key),
            "CopySource": {"Bucket": self.bucket, "Key": self._object_key(source)},
            "ChecksumAlgorithm": "SHA256",
        }
        if content_type:
            arguments.update(ContentType=content_type, MetadataDirective="REPLACE")
        try:
            self.client.copy_object(**arguments)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from exc

    def fetch(self, key: str, scratch: Path) -> Path | None:
        """The object streamed into ``scratch/<key>``."""
        stream = self.read_stream(key)
        if stream is None:
            return None
        path = scratch / check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
        except OSError as exc:
            raise TargetError(f"cannot keep a copy of {self.location}/{key}: {exc}") from exc
        except Exception as exc:  # botocore/urllib3 errors while reading the body
            raise self._fail("read", key, exc) from exc
        return path

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix or "(all keys)", exc) from exc

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """An object's version: its ETag, size and last-modified time, from the listing."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    version = f"{item.get('ETag', '')}:{item.get('Size', '')}:" + (
                        modified.isoformat() if modified is not None else ""
                    )
                    yield item["Key"][len(self.prefix) :], version
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix or "(all keys)", exc) from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES:
                raise self._fail("delete", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("delete", key, exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` in batches of 1000 (one request each)."""
        from botocore.exceptions import BotoCoreError, ClientError

        keys = list(self.list_keys(prefix))
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            objects = [{"Key": self.prefix + key} for key in batch]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("delete", f"{prefix}*", exc) from exc
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise TargetError(
                    f"{self.location}: cannot delete {len(errors)} object(s) under {prefix!r}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} ({first.get('Message')})"
                )
        return len(keys)

    def url(self, key: str) -> str:
        path = quote(self._object_key(key), safe="/-_.~")
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.amazonaws.com/{path}"

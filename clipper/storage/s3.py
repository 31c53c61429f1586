"""S3 backend (MinIO or any S3-protocol server) with the `minio` SDK.

Two clients share one HTTP pool: `_client` talks to the internal endpoint; `_public` exists only
to sign download links for `s3_public_endpoint`. Both have the region set, because presigning
without a known region makes minio ask the server for the bucket location over the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from clipper.errors import BadRequest, NotFound, TransientError
from clipper.settings import Settings
from clipper.storage.base import (
    Bucket,
    ObjectInfo,
    decode_metadata_value,
    encode_metadata_value,
    normalize_metadata,
    validate_key,
    validate_prefix,
    validate_ttl,
)
from clipper.storage.links import content_disposition

#: Time to open a TCP connection: an unreachable store must answer fast, never hang.
CONNECT_TIMEOUT_SECONDS = 2.0

#: Longest wait for the next bytes of a response (uploads of big parts included).
READ_TIMEOUT_SECONDS = 30.0

#: Retries inside one call (connection errors and 5xx); the job queue retries longer outages.
HTTP_RETRIES = 1


#: What a client reads when the store fails (the endpoint is operator detail).
STORAGE_UNAVAILABLE = "storage unavailable"

# A missing bucket is not the client's fault (nothing was set up): it stays a TransientError.
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


def http_pool(
    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
    retries: int = HTTP_RETRIES,
) -> urllib3.PoolManager:
    """The urllib3 pool both clients use: short timeouts, few retries."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout_seconds, read=read_timeout_seconds),
        maxsize=10,
        retries=urllib3.Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
            raise_on_status=False,
        ),
    )


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """`host:port` or `http(s)://host:port` → (host:port, secure)."""
    if "://" not in endpoint:
        return endpoint.rstrip("/"), secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError("an S3 endpoint is http(s)://host[:port] without a path")
    return parts.netloc, parts.scheme == "https"


class S3Storage:
    """The Storage interface on an S3-protocol server."""

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: urllib3.PoolManager | None = None,
        part_size_bytes: int | None = None,
    ) -> None:
        pool = http_client or http_pool()
        secret = settings.s3_secret_key.get_secret_value()
        host, secure = split_endpoint(settings.s3_endpoint, settings.s3_secure)
        self._endpoint = host
        self._client = Minio(
            host,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=secure,
            region=settings.s3_region,
            http_client=pool,
        )
        self._public = self._client
        if settings.s3_public_endpoint:
            pub_host, pub_secure = split_endpoint(settings.s3_public_endpoint, secure)
            self._public = Minio(
                pub_host,
                access_key=settings.s3_access_key,
                secret_key=secret,
                secure=pub_secure,
                region=settings.s3_region,
                http_client=pool,
            )
        self._buckets: dict[Bucket, str] = {
            "sources": settings.source_bucket,
            "clips": settings.clip_bucket,
        }
        self._part_size_bytes = part_size_bytes or settings.s3_part_size_bytes

    def ensure_buckets(self) -> None:
        """Create the source and clip buckets when missing."""
        for name in self._buckets.values():
            with self._errors("create bucket"):
                if self._client.bucket_exists(name):
                    continue
                try:
                    self._client.make_bucket(name)
                except S3Error as exc:
                    # Another replica created it between our check and our call.
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    def check(self) -> None:
        """Readiness: both buckets answer."""
        for name in self._buckets.values():
            with self._errors("check bucket"):
                exists = self._client.bucket_exists(name)
            if not exists:
                raise TransientError(STORAGE_UNAVAILABLE, detail=f"bucket {name!r} does not exist")

    def list_sources(self, prefix: str = "", limit: int = 1000) -> list[ObjectInfo]:
        """Sources whose key starts with `prefix`, sorted by key, at most `limit`."""
        validate_prefix(prefix)
        found: list[ObjectInfo] = []
        with self._errors("list sources"):
            objects = self._client.list_objects(
                self._buckets["sources"], prefix=prefix or None, recursive=True
            )
            for obj in objects:
                if obj.is_dir or obj.object_name is None:
                    continue
                found.append(
                    ObjectInfo(
                        key=obj.object_name,
                        size_bytes=int(obj.size or 0),
                        etag=(obj.etag or "").strip('"'),
                        last_modified=obj.last_modified or datetime.fromtimestamp(0, UTC),
                    )
                )
                if len(found) >= limit:
                    break
        return found

    def stat_source(self, key: str) -> ObjectInfo:
        """One source; NotFound when missing."""
        return self._stat("sources", key)

    def put_source(self, key: str, path: Path) -> ObjectInfo:
        """Upload a local file into the source library."""
        return self._put("sources", key, path, {}, "application/octet-stream")

    def source_input_url(self, key: str, ttl_seconds: int) -> str:
        """A presigned GET for the internal endpoint (FFmpeg reads it with Range requests)."""
        validate_key(key)
        validate_ttl(ttl_seconds)
        with self._errors("sign source link"):
            url: str = self._client.presigned_get_object(
                self._buckets["sources"], key, expires=timedelta(seconds=ttl_seconds)
            )
        return url

    def put_clip(
        self, key: str, path: Path, *, metadata: dict[str, str], content_type: str
    ) -> ObjectInfo:
        """Upload a verified clip with provenance metadata (multipart when large)."""
        return self._put("clips", key, path, metadata, content_type)

    def abort_clip_uploads(self, key: str) -> int:
        """Abort unfinished multipart uploads of a clip (a killed job leaves its parts)."""
        validate_key(key)
        bucket = self._buckets["clips"]
        aborted = 0
        with self._errors("abort uploads", key=key):
            # minio has no public call for these two S3 requests (ListMultipartUploads,
            # AbortMultipartUpload); its own put_object uses the same private ones.
            listing = self._client._list_multipart_uploads(bucket, prefix=key)
            for upload in listing.uploads:
                if upload.object_name == key and upload.upload_id:
                    self._client._abort_multipart_upload(bucket, key, upload.upload_id)
                    aborted += 1
        return aborted

    def stat_clip(self, key: str) -> ObjectInfo | None:
        """One clip, or None when missing."""
        try:
            return self._stat("clips", key)
        except NotFound:
            return None

    def delete_clip(self, key: str) -> None:
        """Remove a clip (S3 deletes are idempotent)."""
        validate_key(key)
        with self._errors("delete clip"):
            self._client.remove_object(self._buckets["clips"], key)

    def download_url(
        self, bucket: Bucket, key: str, *, filename: str, ttl_seconds: int
    ) -> tuple[str, datetime]:
        """A presigned GET for the public endpoint with a safe Content-Disposition."""
        return self.download_url_at(
            bucket, key, filename=filename, ttl_seconds=ttl_seconds, signed_at=datetime.now(UTC)
        )

    def download_url_at(
        self, bucket: Bucket, key: str, *, filename: str, ttl_seconds: int, signed_at: datetime
    ) -> tuple[str, datetime]:
        """download_url with the signing time given (tests sign in the past to get dead links)."""
        validate_key(key)
        validate_ttl(ttl_seconds)
        signed_at = signed_at.replace(microsecond=0)
        with self._errors("sign download link"):
            url: str = self._public.presigned_get_object(
                self._bucket(bucket),
                key,
                expires=timedelta(seconds=ttl_seconds),
                response_headers={"response-content-disposition": content_disposition(filename)},
                request_date=signed_at,
            )
        return url, signed_at + timedelta(seconds=ttl_seconds)

    # -- helpers -------------------------------------------------------------------------

    def _bucket(self, bucket: Bucket) -> str:
        if bucket not in self._buckets:
            raise BadRequest(f"unknown bucket {bucket!r}", field="bucket")
        return self._buckets[bucket]

    def _stat(self, bucket: Bucket, key: str) -> ObjectInfo:
        validate_key(key)
        with self._errors("stat", key=key):
            stat = self._client.stat_object(self._bucket(bucket), key)
        metadata = {
            name.lower()[len("x-amz-meta-") :]: decode_metadata_value(value)
            for name, value in (stat.metadata or {}).items()
            if name.lower().startswith("x-amz-meta-")
        }
        return ObjectInfo(
            key=key,
            size_bytes=int(stat.size or 0),
            etag=(stat.etag or "").strip('"'),
            last_modified=stat.last_modified or datetime.fromtimestamp(0, UTC),
            metadata=metadata,
        )

    def _put(
        self, bucket: Bucket, key: str, path: Path, metadata: dict[str, str], content_type: str
    ) -> ObjectInfo:
        validate_key(key)
        path.stat()  # a missing local file is a caller bug, not a storage outage
        headers = {
            f"x-amz-meta-{name}": encode_metadata_value(value)
            for name, value in normalize_metadata(metadata).items()
        }
        with self._errors("upload", key=key):
            self._client.fput_object(
                self._bucket(bucket),
                key,
                str(path),
                content_type=content_type,
                metadata=headers,  # type: ignore[arg-type]  # minio's alias is too narrow
                part_size=self._part_size_bytes,
                num_parallel_uploads=2,
            )
        return self._stat(bucket, key)

    @contextlib.contextmanager
    def _errors(self, operation: str, *, key: str | None = None) -> Iterator[None]:
        """Map minio/urllib3 failures onto the taxonomy. Clients read `storage unavailable`;
        the endpoint and the failing call are operator detail (logs, stored tracebacks)."""
        try:
            yield
        except S3Error as exc:
            _raise_s3_error(exc, operation, key)
        except (ServerError, InvalidResponseError) as exc:
            raise TransientError(
                STORAGE_UNAVAILABLE,
                detail=f"{operation} failed: {self._endpoint} answered {type(exc).__name__}",
            ) from None
        except (urllib3.exceptions.HTTPError, MinioException, OSError) as exc:
            raise TransientError(
                STORAGE_UNAVAILABLE,
                detail=f"{operation} failed: {self._endpoint} unreachable ({type(exc).__name__})",
            ) from None


def _raise_s3_error(exc: S3Error, operation: str, key: str | None) -> NoReturn:
    if exc.code in _MISSING_CODES and key is not None:
        raise NotFound(f"object {key!r} not found") from None
    raise TransientError(STORAGE_UNAVAILABLE, detail=f"{operation} failed: {exc.code}") from None

"""Object storage (s3:// destinations, any S3-compatible endpoint) for report copies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import MarketopsError, TransientError


@dataclass(frozen=True)
class S3Target:
    """A resolved s3:// destination (credentials already taken from the environment)."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def parse(cls, url: str, **options: str | None) -> S3Target:
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix.strip("/"), **options)


def upload_directory(target: S3Target, directory: Path, key_prefix: str) -> list[str]:
    """Upload every file of `directory` under prefix/key_prefix/, manifest.json last (so a
    copy is complete when its manifest is there). Returns the keys written."""
    import boto3
    import botocore.exceptions

    client = boto3.client("s3", endpoint_url=target.endpoint_url, region_name=target.region,
                          aws_access_key_id=target.access_key_id,
                          aws_secret_access_key=target.secret_access_key)
    files = sorted(directory.iterdir(), key=lambda p: (p.name == "manifest.json", p.name))
    base = "/".join(part for part in (target.prefix, key_prefix.strip("/")) if part)
    keys = []
    try:
        for path in files:
            key = f"{base}/{path.name}"
            client.put_object(Bucket=target.bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
    except botocore.exceptions.EndpointConnectionError as exc:
        raise TransientError(f"object storage unreachable: {exc}") from None
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
            raise TransientError(f"object storage busy ({code})") from None
        raise MarketopsError(f"object storage refused the upload to s3://{target.bucket}: "
                             f"{code}") from None
    return keys

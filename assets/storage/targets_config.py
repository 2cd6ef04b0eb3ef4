"""Build the publishing target named in the configuration (``local`` or ``s3``)."""

from __future__ import annotations

from pathlib import Path

from assets.storage.targets import LocalTarget, Target, TargetError

#: The kinds of target :func:`make_target` knows.
TARGET_KINDS = ("local", "s3")


def make_target(
    kind: str,
    local_dir: Path,
    bucket: str | None,
    prefix: str,
    endpoint_url: str | None,
    region: str | None,
) -> Target:
    """A :class:`LocalTarget` on ``local_dir`` or an :class:`S3Target` on ``bucket``/``prefix``.

    S3 credentials come from the standard AWS chain; nothing here reads them.
    """
    normalised = kind.strip().lower()
    if normalised == "local":
        return LocalTarget(local_dir)
    if normalised == "s3":
        if not bucket:
            raise TargetError(
                "publish target 's3' needs a bucket: set publish.s3.bucket in the configuration"
            )
        from assets.storage.s3 import S3Target

        return S3Target(bucket, prefix, endpoint_url=endpoint_url or None, region=region or None)
    raise TargetError(f"unknown publish target {kind!r}: expected one of {', '.join(TARGET_KINDS)}")

"""Where a lake lives when it is not a directory: ``lake.root: s3://bucket/prefix``.

Kept free of pyarrow so that the configuration can parse a root without loading the S3 client
(``s3.py`` builds the file system).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["S3_SCHEME", "S3Root", "is_s3_url"]

S3_SCHEME: Final = "s3://"
# S3's own bucket naming rule (lower case, digits, dots, hyphens; 3-63 characters).
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_s3_url(value: str) -> bool:
    return value[: len(S3_SCHEME)].lower() == S3_SCHEME


@dataclass(frozen=True, slots=True)
class S3Root:
    """A lake under ``s3://<bucket>/<prefix>``: the same layout as a directory, in object keys."""

    bucket: str
    prefix: str  # no leading or trailing "/", may be empty

    @classmethod
    def parse(cls, url: str) -> S3Root:
        """``s3://bucket/some/prefix`` -> S3Root; ValueError naming what is wrong."""
        if not is_s3_url(url):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name (s3://<bucket>/<prefix>)")
        parts = [part for part in prefix.split("/") if part]
        if any(part in (".", "..") for part in parts):
            raise ValueError("the prefix must not contain '.' or '..'")
        return cls(bucket, "/".join(parts))

    @property
    def url(self) -> str:
        return f"{S3_SCHEME}{self.base}"

    @property
    def base(self) -> str:
        """``bucket/prefix``: the root as pyarrow's S3FileSystem names paths."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def path(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def __str__(self) -> str:
        return self.url

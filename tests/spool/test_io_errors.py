"""The disk refusing a write: a retryable error, and the log cut back to its last good record.

The refusal is real, not mocked: the child process lowers RLIMIT_FSIZE (with SIGXFSZ ignored),
so the kernel accepts part of a record and then fails the write with EFBIG, exactly the
short-write-then-error sequence of a disk that fills up mid-record (ENOSPC takes the same code
path; docs/durability.md shows a manual run on a 1 MiB tmpfs). A tmpfs cannot be mounted in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_refused_write_is_retryable_and_leaves_the_segment_intact(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.spool.spool_worker", "efbig", str(tmp_path / "spool")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # A record cut off mid-write: refused as retryable, nothing of it left in the segment.
    assert report["first"].startswith("SpoolWriteError: writing to the spool failed (the file size limit")
    assert "File too large" in report["first_cause"]
    assert report["size_after_failure"] == report["good_size"]
    assert report["retry_seq"] == 6  # the refused record used no sequence number
    # A roll whose new segment cannot even get its header: no half-made segment is left behind.
    assert report["roll"].startswith("SpoolWriteError: cannot start spool segment")
    assert report["segments_after_failed_roll"] is True
    assert report["roll_retry_seq"] == 13
    assert report["refused_io"] == 2
    # After a restart every acknowledged record is there and nothing needed cutting.
    assert report["replayed"] == list(range(1, 14))
    assert report["payloads_ok"] is True
    assert report["torn_bytes_dropped"] == 0

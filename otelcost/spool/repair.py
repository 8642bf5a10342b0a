"""``otelcost spool repair``: the explicit, operator-run way past a damaged spool.

``Spool.start()`` refuses a log with damage in the middle, because cutting it there could drop
acknowledged spans. Whether to accept that loss is a person's decision, so it is a command, never
a configuration switch (a switch left on would turn every future corruption into a silent loss).

What repair does, in this order, and nothing else:

* a damaged checkpoint file is reset to just before the oldest segment: everything still on disk
  is replayed again (duplicates are possible, loss is not);
* records missing between the checkpoint and the oldest segment (a segment deleted by hand) are
  accepted as gone: the checkpoint moves past them;
* the log is cut at its first damaged byte (point-in-time recovery): the bytes from there to the
  end of that segment, and every later segment, are *moved* to ``quarantine/<UTC time>/``, never
  deleted, and the report says how many intact records were among them. They are not replayed.

Repair takes the directory lock, so it refuses to run while otelcost is using the spool.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from otelcost.fsync import fsync_path
from otelcost.spool.durable import write_checkpoint_file
from otelcost.spool.errors import SpoolError
from otelcost.spool.format import CHECKPOINT_TMP_NAME, QUARANTINE_DIR, SEGMENT_HEADER
from otelcost.spool.lockfile import DirectoryLock
from otelcost.spool.scan import list_segments, read_checkpoint, scan

__all__ = ["RepairReport", "repair"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RepairReport:
    directory: Path
    problems: tuple[str, ...]
    """What was wrong; empty when the spool was healthy and nothing was changed."""
    checkpoint_before: int | None
    """None when the checkpoint file was damaged."""
    checkpoint_after: int
    last_seq: int
    """The newest record kept."""
    quarantine: Path | None
    quarantined_files: tuple[Path, ...]
    intact_records_quarantined: int
    dry_run: bool

    def describe(self) -> str:
        if not self.problems:
            return (
                f"spool {self.directory} is healthy: checkpoint {self.checkpoint_after}, "
                f"last seq {self.last_seq}"
            )
        verb = "would be" if self.dry_run else "were"
        lines = [f"spool {self.directory}:", *(f"  problem: {p}" for p in self.problems)]
        if self.checkpoint_before != self.checkpoint_after:
            lines.append(f"  checkpoint {self.checkpoint_before} -> {self.checkpoint_after}")
        if self.quarantined_files:
            lines.append(
                f"  {len(self.quarantined_files)} file(s) {verb} moved to {self.quarantine}, holding "
                f"{self.intact_records_quarantined} intact record(s) that will not be replayed"
            )
        lines.append(f"  the log now ends at seq {self.last_seq}")
        return "\n".join(lines)


def repair(directory: Path, *, dry_run: bool = False) -> RepairReport:
    """Make the spool in ``directory`` startable again; see the module docstring for how."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpoolError(f"{directory} is not a spool directory")
    lock = DirectoryLock(directory)
    lock.acquire()
    try:
        return _repair(directory, dry_run=dry_run)
    finally:
        lock.release()


def _repair(directory: Path, *, dry_run: bool) -> RepairReport:
    problems: list[str] = []
    checkpoint_before: int | None
    try:
        checkpoint_before = read_checkpoint(directory)
        checkpoint = checkpoint_before
    except SpoolError as exc:
        problems.append(str(exc))
        checkpoint_before = None
        segments = list_segments(directory)
        checkpoint = segments[0][0] - 1 if segments else 0
    result = scan(directory, checkpoint=checkpoint)
    if result.missing is not None:
        first, last = result.missing
        problems.append(f"records {first}..{last} are missing (no segment file holds them)")
        checkpoint = last
    quarantine: Path | None = None
    moved: list[Path] = []
    intact = 0
    damage = result.damage
    if damage is not None:
        problems.append(f"damage in {damage.describe()}")
        intact = damage.intact_after
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        quarantine = directory / QUARANTINE_DIR / stamp
        moved = [
            quarantine / f"{damage.path.name}.from-{damage.offset}",
            *(quarantine / p.name for p in damage.later_segments),
        ]
        if not dry_run:
            _quarantine(directory, quarantine, damage.path, damage.offset, damage.later_segments)
    last_seq = max(checkpoint, result.segments[-1].last_seq if result.segments else 0)
    if not dry_run:
        (directory / CHECKPOINT_TMP_NAME).unlink(missing_ok=True)
        if checkpoint != checkpoint_before:
            write_checkpoint_file(directory, checkpoint)
    report = RepairReport(
        directory=directory,
        problems=tuple(problems),
        checkpoint_before=checkpoint_before,
        checkpoint_after=checkpoint,
        last_seq=last_seq,
        quarantine=quarantine,
        quarantined_files=tuple(moved),
        intact_records_quarantined=intact,
        dry_run=dry_run,
    )
    if problems and not dry_run:
        log.warning("%s", report.describe())
    return report


def _quarantine(
    directory: Path, quarantine: Path, damaged: Path, offset: int, later: tuple[Path, ...]
) -> None:
    quarantine.mkdir(parents=True, exist_ok=False)
    target = quarantine / f"{damaged.name}.from-{offset}"
    if offset < SEGMENT_HEADER.size:
        os.replace(damaged, target)  # nothing before the damage is worth keeping in place
    else:
        with damaged.open("rb") as source, target.open("wb") as copy:
            source.seek(offset)
            shutil.copyfileobj(source, copy, 2**20)
            copy.flush()
            os.fsync(copy.fileno())
    for path in later:
        os.replace(path, quarantine / path.name)
    # The quarantined copy is durable, under a durable name, before the original is cut.
    fsync_path(quarantine)
    fsync_path(quarantine.parent)
    fsync_path(directory)
    if offset >= SEGMENT_HEADER.size:
        with damaged.open("r+b") as source:
            source.truncate(offset)
            os.fsync(source.fileno())

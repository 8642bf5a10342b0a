"""Recovery after a crash: torn tails are cut, damage to acknowledged records stops the start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.spool import SpoolCorruptionError, SpoolError, repair
from otelcost.spool.commands import spool as spool_command
from otelcost.spool.format import RECORD_HEADER, SEGMENT_HEADER

from .conftest import SpoolFactory, payload_for, segment_files

SIZE = 1000
RECORD = RECORD_HEADER.size + SIZE


def write_records(open_spool: SpoolFactory, count: int, **config: object) -> Path:
    spool = open_spool(**config)
    for key in range(1, count + 1):
        spool.append_sync(payload_for(key, SIZE))
    spool.shutdown()
    return spool.directory


def record_offset(index: int) -> int:
    """Byte offset of the index-th record (0-based) of a segment of SIZE-byte payloads."""
    return SEGMENT_HEADER.size + index * RECORD


def flip_bit(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ 0x10]))


def replayed(open_spool: SpoolFactory, **config: object) -> list[int]:
    spool = open_spool(**config)
    records = list(spool.replay())
    assert all(r.payload == payload_for(r.seq, SIZE) for r in records)
    return [r.seq for r in records]


@pytest.mark.parametrize("cut", [RECORD_HEADER.size // 2, RECORD_HEADER.size + SIZE // 2, RECORD - 1])
def test_torn_last_record_is_cut_and_every_complete_record_kept(open_spool: SpoolFactory, cut: int) -> None:
    directory = write_records(open_spool, 10)
    (segment,) = segment_files(directory)
    os.truncate(segment, record_offset(9) + cut)  # the write of record 10 was cut short
    spool = open_spool()
    assert [r.seq for r in spool.replay()] == list(range(1, 10))
    assert spool.recovery is not None and spool.recovery.torn_bytes_dropped == cut
    assert segment.stat().st_size == record_offset(9)
    assert spool.append_sync(payload_for(10, SIZE)) == 10  # the torn seq was never acknowledged


def test_torn_record_followed_by_garbage_is_cut(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 10)
    (segment,) = segment_files(directory)
    os.truncate(segment, record_offset(9) + 300)
    with segment.open("ab") as file:
        file.write(os.urandom(5000))
    assert replayed(open_spool) == list(range(1, 10))


@pytest.mark.parametrize("tail", [b"garbage!", bytes(8192), b"\xff" * 3])
def test_junk_after_the_last_complete_record_is_cut(open_spool: SpoolFactory, tail: bytes) -> None:
    directory = write_records(open_spool, 5)
    (segment,) = segment_files(directory)
    with segment.open("ab") as file:
        file.write(tail)
    assert replayed(open_spool) == [1, 2, 3, 4, 5]
    assert segment.stat().st_size == record_offset(5)


def test_a_new_segment_torn_before_its_header_is_removed(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 6, segment_size=3 * RECORD + SEGMENT_HEADER.size)
    (directory / f"{7:020d}.seg").write_bytes(b"OTCSP")  # crash while creating segment 7
    assert replayed(open_spool) == list(range(1, 7))
    assert [p.name[-6:-4] for p in segment_files(directory)] == ["01", "04"]


def test_bit_flip_in_the_middle_refuses_to_start_naming_file_and_offset(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 10)
    (segment,) = segment_files(directory)
    flip_bit(segment, record_offset(4) + RECORD_HEADER.size + 17)  # payload of record 5
    with pytest.raises(SpoolCorruptionError) as caught:
        open_spool()
    error = caught.value
    assert (error.path, error.offset, error.seq) == (segment, record_offset(4), 5)
    assert str(segment) in str(error) and f"byte offset {record_offset(4)}" in str(error)
    assert "5 intact record(s) follow" in str(error) and "otelcost spool repair" in str(error)
    with pytest.raises(SpoolCorruptionError):  # the failed start released the directory lock
        open_spool()


def test_bit_flip_in_a_length_field_is_not_mistaken_for_a_torn_tail(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 10)
    (segment,) = segment_files(directory)
    # The high byte of record 3's length: unchecked, it would claim to run past the end of the file.
    flip_bit(segment, record_offset(2) + 11)
    with pytest.raises(SpoolCorruptionError, match="record header checksum"):
        open_spool()


def test_damage_in_an_older_segment_refuses_to_start(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 9, segment_size=3 * RECORD + SEGMENT_HEADER.size)
    first, *_ = segment_files(directory)
    os.truncate(first, record_offset(2) + 10)  # the end of segment 1 is gone, segments 4.. are fine
    with pytest.raises(SpoolCorruptionError, match="6 intact record"):
        open_spool()


def test_damage_in_the_last_record_is_cut_as_a_torn_tail(
    open_spool: SpoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing valid follows it, so it is indistinguishable from an unfinished write: the one case
    # where damage to a record that was acknowledged would be cut (docs/durability.md).
    directory = write_records(open_spool, 4)
    (segment,) = segment_files(directory)
    flip_bit(segment, record_offset(3) + RECORD_HEADER.size + 5)
    with caplog.at_level(logging.WARNING, logger="otelcost.spool"):
        assert replayed(open_spool) == [1, 2, 3]
    assert "torn tail" in caplog.text and "payload checksum" in caplog.text


def test_a_deleted_segment_refuses_to_start(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 9, segment_size=3 * RECORD + SEGMENT_HEADER.size)
    segment_files(directory)[1].unlink()
    with pytest.raises(SpoolCorruptionError, match=r"records 4\.\.6 are missing"):
        open_spool()
    segment_files(directory)[0].unlink()
    with pytest.raises(SpoolError, match=r"records 1\.\.6 are missing"):
        open_spool()


def test_repair_cuts_at_the_damage_and_quarantines_the_rest(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 9, segment_size=3 * RECORD + SEGMENT_HEADER.size)
    middle = segment_files(directory)[1]
    flip_bit(middle, record_offset(1) + RECORD_HEADER.size)  # record 5
    before = {p.name: p.read_bytes() for p in segment_files(directory)}

    preview = repair(directory, dry_run=True)
    assert {p.name: p.read_bytes() for p in segment_files(directory)} == before
    report = repair(directory)
    assert report.problems == preview.problems and len(report.problems) == 1
    assert report.last_seq == 4 and report.intact_records_quarantined == 4  # 6 and 7..9
    assert report.quarantine is not None
    assert sorted(p.name for p in report.quarantine.iterdir()) == [
        f"{4:020d}.seg.from-{record_offset(1)}",
        f"{7:020d}.seg",
    ]
    assert (report.quarantine / f"{7:020d}.seg").read_bytes() == before[f"{7:020d}.seg"]
    cut = (report.quarantine / f"{4:020d}.seg.from-{record_offset(1)}").read_bytes()
    assert before[middle.name] == before[middle.name][: record_offset(1)] + cut
    assert replayed(open_spool, segment_size=3 * RECORD + SEGMENT_HEADER.size) == [1, 2, 3, 4]
    assert repair.__module__ == "otelcost.spool.repair"


def test_repair_of_a_damaged_checkpoint_replays_rather_than_loses(open_spool: SpoolFactory) -> None:
    spool = open_spool(segment_size=3 * RECORD + SEGMENT_HEADER.size)
    for key in range(1, 10):
        spool.append_sync(payload_for(key, SIZE))
    spool.checkpoint(5)  # segment 1..3 deleted, records 4 and 5 remain on disk
    spool.shutdown()
    (directory := spool.directory).joinpath("checkpoint").write_bytes(b"rot")
    report = repair(directory)
    assert (report.checkpoint_before, report.checkpoint_after) == (None, 3)
    assert replayed(open_spool) == [4, 5, 6, 7, 8, 9]


def test_repair_refuses_while_the_spool_is_in_use(open_spool: SpoolFactory) -> None:
    spool = open_spool()
    with pytest.raises(SpoolError, match="in use"):
        repair(spool.directory)


def test_cli_info_and_repair(open_spool: SpoolFactory) -> None:
    directory = write_records(open_spool, 6)
    (segment,) = segment_files(directory)
    flip_bit(segment, record_offset(1) + 3)  # header of record 2
    runner = CliRunner()
    info = runner.invoke(spool_command, ["info", str(directory)])
    assert info.exit_code == 0, info.output
    assert "DAMAGE:" in info.output and f"byte offset {record_offset(1)}" in info.output
    refused = runner.invoke(spool_command, ["repair", str(directory)], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    done = runner.invoke(spool_command, ["repair", str(directory), "--yes"])
    assert done.exit_code == 0, done.output
    assert "4 intact record(s) that will not be replayed" in done.output
    healthy = runner.invoke(spool_command, ["repair", str(directory)])
    assert "is healthy" in healthy.output
    assert replayed(open_spool) == [1]

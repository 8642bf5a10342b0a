"""The writer id (``otelcost/lake/writers.py``) and ``lake.root`` / ``lake.writer_id`` in the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otelcost.config import LakeConfig, load_config
from otelcost.errors import ConfigError
from otelcost.lake.seqs import UNNAMED_WRITER
from otelcost.lake.writer import LakeWriter
from otelcost.lake.writers import WRITER_ID_FILE, lake_writer_id, stored_writer_id

PRINT_ID = "import sys; from pathlib import Path; from otelcost.lake.writers import stored_writer_id; " + (
    "print(stored_writer_id(Path(sys.argv[1])))"
)


def test_the_id_is_configured_unnamed_or_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert lake_writer_id(data, root=None, configured=None) == UNNAMED_WRITER
    assert lake_writer_id(data, root="/shared", configured="pod-0") == "pod-0"
    assert not (data / WRITER_ID_FILE).exists()  # neither case stores anything
    generated = lake_writer_id(data, root="/shared", configured=None)
    assert (data / WRITER_ID_FILE).read_text() == generated + "\n"
    # A restart (another process) finds the same id; another data directory gets another one.
    again = subprocess.run(
        [sys.executable, "-c", PRINT_ID, str(data)], capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == generated
    assert lake_writer_id(tmp_path / "other", root="/shared", configured=None) != generated
    assert not [p for p in data.iterdir() if p.name != WRITER_ID_FILE]  # no temporary file left


def test_processes_racing_on_one_data_directory_agree_on_one_id(tmp_path: Path) -> None:
    data = tmp_path / "data"
    racers = [
        subprocess.Popen([sys.executable, "-c", PRINT_ID, str(data)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    answers = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    assert answers == {(data / WRITER_ID_FILE).read_text().strip()}


def test_a_damaged_id_file_is_an_error_naming_the_way_out(tmp_path: Path) -> None:
    (tmp_path / WRITER_ID_FILE).write_text("not an id!\n")
    with pytest.raises(ConfigError, match=r"set lake\.writer_id"):
        stored_writer_id(tmp_path)


def test_a_shared_root_without_an_id_is_refused_by_the_writer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a lake writer id"):
        LakeWriter(lake_dir=tmp_path, config=LakeConfig(root=str(tmp_path)))
    assert (
        LakeWriter(lake_dir=tmp_path, config=LakeConfig(root=str(tmp_path), writer_id="w1")).writer_id == "w1"
    )
    assert LakeWriter(lake_dir=tmp_path, config=LakeConfig()).writer_id == UNNAMED_WRITER
    passed = LakeWriter(
        lake_dir=tmp_path, config=LakeConfig(root=str(tmp_path), writer_id="w1"), writer_id="w2"
    )
    assert passed.writer_id == "w2"


def test_lake_root_moves_the_lake_of_every_reader(tmp_path: Path) -> None:
    assert load_config(environ={}).lake_dir == Path("otelcost-data") / "lake"
    config_file = tmp_path / "conf" / "otelcost.yaml"
    config_file.parent.mkdir()
    config_file.write_text("data_dir: /var/lib/otelcost\nlake:\n  root: ../shared/lake\n  writer_id: pod-1\n")
    config = load_config(config_file, environ={})
    # Relative to the YAML file's folder, like the other paths in it.
    assert config.lake_dir == tmp_path / "conf" / ".." / "shared" / "lake"
    assert config.lake.writer_id == "pod-1"
    from_env = load_config(environ={"OTELCOST_LAKE__ROOT": "/mnt/lake", "OTELCOST_DATA_DIR": "/d"})
    assert from_env.lake_dir == Path("/mnt/lake") and from_env.spool_dir == Path("/d/spool")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTELCOST_LAKE__ROOT": "s3://Not_A_Bucket/prefix"},
            "lake.root: 'Not_A_Bucket' is not an S3 bucket name",
        ),
        ({"OTELCOST_LAKE__ROOT": "s3://bucket/a/../b"}, "lake.root: the prefix must not contain"),
        ({"OTELCOST_LAKE__ROOT": "gs://bucket"}, "lake.root: unsupported scheme 'gs'"),
        ({"OTELCOST_LAKE__ROOT": "  "}, "lake.root: must not be empty"),
        ({"OTELCOST_LAKE__WRITER_ID": "a/b"}, "lake.writer_id: must be 1-64 letters"),
        ({"OTELCOST_LAKE__WRITER_ID": "x" * 65}, "lake.writer_id: must be 1-64 letters"),
    ],
)
def test_bad_lake_roots_and_writer_ids_name_their_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_an_s3_root_loads_but_only_the_s3_readers_take_it() -> None:
    config = load_config(environ={"OTELCOST_LAKE__ROOT": "s3://my-bucket/otelcost/"})
    assert config.lake.root == "s3://my-bucket/otelcost/"
    with pytest.raises(
        ConfigError, match="only otelcost sql, lake compact and lake retention work on an s3:// lake"
    ):
        _ = config.lake_dir

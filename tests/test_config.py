"""Configuration: each fixture file is tied to its exact message; precedence file < env < flags."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.cli import main
from otelcost.config import Config, load_config
from otelcost.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "config"
REPO = Path(__file__).parent.parent

BAD_FIXTURES = {
    "typo_section.yaml": "recevier: unknown key",
    "bad_listen.yaml": "receiver.http.listen: expected HOST:PORT such as 127.0.0.1:4317, got 'localhost'",
    "bad_duration.yaml": (
        "lake.flush_interval: expected a duration such as 500ms, 5s, 1m, 24h or 7d, got 'soon'"
    ),
    "no_protocol.yaml": "receiver: at least one of receiver.grpc and receiver.http must be enabled",
    "bad_attribution_source.yaml": "attribution.dimensions.team[0]: a source sets exactly one of",
    "unknown_dimension.yaml": "attribution.required[1]: Input should be 'team'",
    "not_a_mapping.yaml": "the top level must be a mapping of keys, got list",
}


@pytest.mark.parametrize(("name", "message"), sorted(BAD_FIXTURES.items()))
def test_each_bad_config_names_its_key(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(FIXTURES / name, environ={})
    assert message in str(excinfo.value)


def test_every_fixture_is_covered() -> None:
    bad = {p.name for p in FIXTURES.glob("*.yaml") if not p.name.startswith("good_")}
    assert bad == set(BAD_FIXTURES)


def test_good_config_loads_with_units() -> None:
    config = load_config(FIXTURES / "good_minimal.yaml", environ={})
    assert config.receiver.grpc.listen == "0.0.0.0:4317"
    assert config.lake.flush_interval == timedelta(milliseconds=500)
    assert config.attribution.required == ["team"]
    assert config.lake_dir == Path("/var/lib/otelcost/lake")


def test_precedence_defaults_file_env_flags() -> None:
    path = FIXTURES / "good_minimal.yaml"
    env = {"OTELCOST_LAKE__FLUSH_INTERVAL": "3s", "OTELCOST_DATA_DIR": "/from/env"}
    assert load_config(path, environ={}).lake.flush_interval == timedelta(milliseconds=500)
    from_env = load_config(path, environ=env)
    assert from_env.lake.flush_interval == timedelta(seconds=3)
    assert from_env.receiver.grpc.listen == "0.0.0.0:4317"  # untouched keys keep the file's value
    flags = load_config(path, environ=env, overrides={"data_dir": "/from/flag"})
    assert flags.data_dir == Path("/from/flag")
    assert flags.lake.flush_interval == timedelta(seconds=3)


def test_unknown_environment_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="OTELCOST_LAKE_FLUSH"):
        load_config(environ={"OTELCOST_LAKE_FLUSH": "1s"})


def test_pipelines_shipped_with_the_project_are_valid() -> None:
    pipelines = sorted((REPO / "pipelines").glob("*.yaml"))
    assert pipelines, "pipelines/ holds at least the default pipeline"
    for path in pipelines:
        load_config(path, environ={})


def test_default_pipeline_is_the_embedded_default() -> None:
    """pipelines/default.yaml documents the defaults; it must not drift from the model."""
    from_file = load_config(REPO / "pipelines" / "default.yaml", environ={}).model_dump(mode="json")
    assert from_file == Config().model_dump(mode="json")


def test_config_show_prints_effective_values_and_check_fails_on_bad_files() -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["config", "show", "-c", str(FIXTURES / "good_minimal.yaml")], env={})
    assert shown.exit_code == 0, shown.output
    assert "flush_interval: 500ms" in shown.output
    checked = runner.invoke(main, ["config", "check", "-c", str(FIXTURES / "bad_duration.yaml")])
    assert checked.exit_code == 1
    assert "lake.flush_interval" in checked.output


@pytest.mark.parametrize(
    ("window", "shortest_kept"),
    [("quarter", "94d"), ("month", "33d"), ("day", "3d"), ("24h", "3d"), ("1m", "2d")],
)
def test_retention_must_keep_every_budget_window(window: str, shortest_kept: str) -> None:
    # The restart rebuild reads a budget's open window back from the lake; retention may not
    # drop part of it.
    budgets = [{"name": "b", "scope": {"team": "*"}, "window": window, "limit": "10"}]
    days = int(shortest_kept.removesuffix("d"))
    assert Config.model_validate({"lake": {"retention": f"{days}d"}, "budgets": budgets})
    with pytest.raises(
        ValueError,
        match=f"budget 'b' counts a {window} window, so the lake must keep at least {shortest_kept}",
    ):
        Config.model_validate({"lake": {"retention": f"{days - 1}d"}, "budgets": budgets})


def test_relative_file_paths_in_a_config_file_are_taken_from_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "otelcost.yaml").write_text(
        "auth: {keys_file: keys.yaml}\n"
        "receiver: {grpc: {tls: {cert_file: tls/server.crt, key_file: tls/server.key,"
        " client_ca_file: tls/ca.crt}}}\n"
        "api: {tls: {cert_file: /abs/server.crt, key_file: tls/server.key}}\n",
        encoding="utf-8",
    )

    config = load_config(folder / "otelcost.yaml", environ={})

    assert config.auth.keys_file == folder / "keys.yaml"
    grpc_tls = config.receiver.grpc.tls
    assert grpc_tls is not None and config.api.tls is not None
    assert (grpc_tls.cert_file, grpc_tls.key_file, grpc_tls.client_ca_file) == (
        folder / "tls" / "server.crt",
        folder / "tls" / "server.key",
        folder / "tls" / "ca.crt",
    )
    assert (config.api.tls.cert_file, config.api.tls.key_file) == (
        Path("/abs/server.crt"),
        folder / "tls" / "server.key",
    )
    # config check opens the files, and names the key of the first it cannot use.
    checked = CliRunner().invoke(main, ["config", "check", "--config", str(folder / "otelcost.yaml")])
    assert checked.exit_code == 1
    assert "api.tls.cert_file: cannot read /abs/server.crt" in checked.output

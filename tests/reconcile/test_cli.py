"""``otelcost reconcile`` through click's CliRunner over the shared lake: formats and exit status.

The command is not registered in ``otelcost/cli/__init__.py`` by this change; the tests drive the
click object of ``otelcost/cli/reconcile.py`` directly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from otelcost.cli.reconcile import EXIT_UNDER_THRESHOLD, reconcile
from tests.reconcile.conftest import FIXTURES, Lake

GAPS = (
    "--invoice",
    str(FIXTURES / "openai-gaps-costs.csv"),
    "--invoice",
    str(FIXTURES / "openai-gaps-usage.tsv"),
)
EXPLAINED = (
    "--invoice",
    str(FIXTURES / "openai-costs.json"),
    "--invoice",
    str(FIXTURES / "openai-usage.json"),
)


def invoke(lake: Lake, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        reconcile,
        ["--data-dir", str(lake.config.data_dir), "--provider", "openai", "--period", "2026-11", *args],
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_fully_explained_bill_exits_0(lake: Lake) -> None:
    code, out, err = invoke(lake, *EXPLAINED)
    assert code == 0, err
    assert "== summary ==" in out and "== findings ==" in out and "(no rows)" in out
    assert "1.855" in out


def test_an_explained_share_under_min_explained_exits_3_and_still_reports(lake: Lake) -> None:
    code, out, err = invoke(lake, *GAPS)
    assert code == EXIT_UNDER_THRESHOLD == 3
    assert "day_missing" in out and "model_not_in_lake" in out and "price_lower_on_bill" in out
    assert "explained share 77.80% is under --min-explained 0.98" in err
    code, _, _ = invoke(lake, *GAPS, "--min-explained", "0.75")
    assert code == 0


def test_json_has_every_section_and_money_as_strings(lake: Lake) -> None:
    code, out, _ = invoke(lake, *GAPS, "-f", "json", "--min-explained", "0")
    assert code == 0
    document = json.loads(out)
    assert document["passed"] is True
    assert set(document["sections"]) == {"summary", "findings", "cells", "models", "left_out"}
    summary = document["sections"]["summary"][0]
    assert summary["billed_usd"] == "2.140000000000"
    assert summary["explained_usd"] == "1.665000000000"
    assert Decimal(summary["unexplained_usd"]) + Decimal(summary["explained_usd"]) == Decimal("2.14")
    first = document["sections"]["findings"][0]
    assert (first["cause"], first["model"], first["usd"]) == (
        "model_not_in_lake",
        "gpt-4.1",
        "0.280000000000",
    )


def test_csv_prints_one_section_to_a_file(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "cells.csv"
    code, _, _ = invoke(lake, *EXPLAINED, "-f", "csv", "--section", "cells", "-o", str(out))
    assert code == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("day,model,token_class,billed_tokens,lake_tokens,billed_usd")
    # 3 days x (mini: input, cache_read, output; gpt-4o: input, output)
    assert len(lines) == 1 + 15


def test_a_malformed_invoice_exits_1_naming_file_line_and_column(lake: Lake, tmp_path: Path) -> None:
    bad = tmp_path / "usage.csv"
    bad.write_text("start_time,model,input_tokens,output_tokens\n1793577600,gpt-4o,100,ten\n")
    code, _, err = invoke(lake, "--invoice", str(bad))
    assert code == 1
    assert f"Error: {bad}: line 2, column output_tokens: expected a token count, got 'ten'" in err


def test_wrong_command_lines_exit_2(lake: Lake) -> None:
    assert invoke(lake, *EXPLAINED, "--min-explained", "1.5")[0] == 2
    assert invoke(lake, *EXPLAINED, "--min-explained", "most")[0] == 2
    assert invoke(lake, *EXPLAINED, "--model-map", "nonsense")[0] == 2
    assert invoke(lake, *EXPLAINED, "--section", "everything")[0] == 2
    code, _, err = invoke(lake, *EXPLAINED, "--since", "2026-11-02")
    assert code == 2 and "either a period or since/until" in err
    runner = CliRunner()
    base = ["--data-dir", str(lake.config.data_dir), "--provider", "openai", *EXPLAINED]
    result = runner.invoke(reconcile, [*base, "--since", "30d"])
    assert result.exit_code == 2 and "is not a midnight; give dates" in result.stderr


def test_since_until_and_model_map(lake: Lake) -> None:
    runner = CliRunner()
    result = runner.invoke(
        reconcile,
        [
            "--data-dir",
            str(lake.config.data_dir),
            "--provider",
            "bedrock",
            "--invoice",
            str(FIXTURES / "bedrock-cur2.csv"),
            "--since",
            "2026-11-02",
            "--until",
            "2026-11-03",
            "--model-map",
            "Claude Sonnet 4.5=claude-sonnet-4-5",
            "-f",
            "json",
        ],
    )
    # Mapping both Bedrock rates onto the regional model: the lake's global calls (0.06 + 0.03)
    # are over-attributed, and the regional cells get the global tokens too. Input: billed
    # 52,000 for 0.1656, lake 32,000 for 0.1056; the bill's 32,000 matched tokens cost
    # 0.1656 x 32/52 = 0.101907692308 (half-even to the picodollar), explained at that lower
    # price. Output: 6,000 for 0.096 against 4,000 for 0.066: 0.096 x 4/6 = 0.064.
    document = json.loads(result.stdout)
    summary = document["sections"]["summary"][0]
    assert summary["billed_usd"] == "0.264240000000"
    assert summary["explained_usd"] == "0.168547692308"  # 0.101907692308 + 0.064 + 0.00264
    assert summary["over_attributed_usd"] == "0.095692307692"  # 0.09 + 0.003692307692 + 0.002
    assert summary["unexplained_usd"] == "0.095692307692"  # 0.063692307692 + 0.032
    assert result.exit_code == 3

"""chargeback and closed statements over a lake of known traffic, against hand arithmetic.

The lake is two months of the steady company (October and November 2026) plus spend nobody is
charged for directly: calls with no team, and a platform ``eval-runner`` service (some of its
calls untagged too, so the first matching rule decides). Every expectation comes from
``cost_of`` (the price sheet, not otelcost's pricing) and exact fractions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from otelcost.cli import main
from otelcost.config import Config, load_config, report_context
from otelcost.errors import ConfigError, StatementError
from otelcost.lake.audit import command_actor, read_entries
from otelcost.reports import ReportContext, ReportRequest, run_report
from otelcost.reports.chargeback import close_statement, latest_statement, read_statement, statement_versions
from otelcost.reports.chargeback.allocate import prorate_monthly, split
from otelcost.reports.config import ChargebackConfig, ReportsConfig
from tests.reports.traffic import Call, build_lake, cost_of, day_start, steady_company

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
PICO = 10**12

RULES: dict[str, Any] = {
    "charge_to": "team",
    "cost": "cost_usd",
    "rules": [
        {"name": "unattributed", "shared": {"unattributed": True}, "spread": "direct_spend"},
        {"name": "platform-evals", "shared": {"where": {"service": ["eval-runner"]}}, "spread": "evenly"},
        {"name": "gateway", "shared": {"amount_per_month": "90"}, "spread": "tokens"},
        {
            "name": "openai-commitment",
            "shared": {"amount_per_month": "2000"},
            "spread": "weights",
            "weights": {"payments": 3, "discovery": 1},
        },
        {
            "name": "support-desk",
            "shared": {"amount_per_month": "100"},
            "spread": "evenly",
            "among": ["payments", "customer-care", "discovery"],
        },
        {
            "name": "ghost",
            "shared": {"amount_per_month": "10"},
            "spread": "direct_spend",
            "among": ["nobody"],
        },
    ],
}
FIXED = Decimal(90 + 2000 + 100 + 10)
TEAMS = ("customer-care", "discovery", "payments", "platform")

GPT_4O_MINI_DOUBLED = """
provider: openai
source: {url: "https://example.com/negotiated", read: 2026-12-01}
models:
  - id: gpt-4o-mini
    versions:
      - effective_from: 2024-07-18
        prices: {input: "0.30", cache_read: "0.15", output: "1.20"}
"""


def shared_spend() -> list[Call]:
    calls: list[Call] = []
    for index in range(30):  # a batch job nobody tagged with a team
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 1) + timedelta(days=index)) + timedelta(hours=11, minutes=index),
                service="batch-misc",
                team=None,
                feature="misc",
                input_tokens=3_000 + 7 * index,
                output_tokens=300,
            )
        )
    for index in range(20):  # the platform's evals
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 1) + timedelta(days=index)) + timedelta(hours=3),
                service="eval-runner",
                team="platform",
                feature="evals",
                model="gpt-4o",
                input_tokens=5_000,
                output_tokens=1_000 + index,
            )
        )
    for index in range(5):  # evals without a team: the unattributed rule comes first
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 10 + index)) + timedelta(hours=4),
                service="eval-runner",
                team=None,
                feature="evals",
                model="gpt-4o",
                input_tokens=4_000,
                output_tokens=500,
            )
        )
    for index in range(4):  # October's untagged spend must stay out of November
        calls.append(
            Call(
                ts=day_start(date(2026, 10, 20 + index)) + timedelta(hours=11),
                service="batch-misc",
                team=None,
                feature="misc",
                input_tokens=10_000,
            )
        )
    return calls


@dataclass(frozen=True)
class Lake:
    calls: list[Call]
    config: Config
    data_dir: Path

    def context(self, chargeback: dict[str, Any] = RULES, statements: Path | None = None) -> ReportContext:
        base = report_context(self.config)
        reports = ReportsConfig(chargeback=ChargebackConfig.model_validate(chargeback))
        return replace(base, config=reports, statements_dir=statements, now=lambda: NOW)

    def between(self, start: datetime, end: datetime) -> list[Call]:
        return [call for call in self.calls if start <= call.ts < end]

    @property
    def november(self) -> list[Call]:
        return self.between(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    calls = steady_company(date(2026, 10, 1), 61) + shared_spend()
    data_dir = tmp_path_factory.mktemp("chargeback")
    return Lake(calls, build_lake(data_dir, calls), data_dir)


def pico(amount: Decimal) -> int:
    return int(amount * PICO)


def usd(pico_amount: int) -> Decimal:
    return Decimal(pico_amount) / PICO


def total(calls: list[Call]) -> Decimal:
    return sum((cost_of(call) for call in calls), Decimal(0))


@dataclass(frozen=True)
class Expected:
    """November by hand: direct spend and tokens per team, and the two pools of calls."""

    direct: dict[str, Decimal]
    tokens: dict[str, int]
    unattributed: list[Call]
    evals: list[Call]


def expected(calls: list[Call]) -> Expected:
    direct: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, int] = defaultdict(int)
    unattributed, evals = [], []
    for call in calls:
        if call.team is None:
            unattributed.append(call)
        elif call.service == "eval-runner":
            evals.append(call)
        else:
            direct[call.team] += cost_of(call)
            tokens[call.team] += call.input_tokens + call.output_tokens
    return Expected(dict(direct), dict(tokens), unattributed, evals)


def allocated(statement: list[dict[str, Any]], rule: str) -> dict[str, dict[str, Any]]:
    return {row["receiver"]: row for row in statement if row["rule"] == rule and row["kind"] == "allocated"}


@pytest.fixture(scope="module")
def november(lake: Lake) -> dict[str, list[dict[str, Any]]]:
    result = run_report("chargeback", lake.context(), ReportRequest(period="2026-11"))
    return {name: table.to_pylist() for name, table in result.sections.items()}


def test_the_statement_conserves_every_picodollar_and_names_every_rule(
    lake: Lake, november: dict[str, list[dict[str, Any]]]
) -> None:
    statement = november["statement"]
    charged = sum((row["cost_usd"] for row in statement), Decimal(0))
    assert charged == total(lake.november) + FIXED  # exact Decimal equality
    for row in statement:
        if row["kind"] == "direct":
            assert row["rule"] is None and row["receiver"] in TEAMS
        else:
            assert row["rule"] in {rule["name"] for rule in RULES["rules"]}, row
    by_hand = expected(lake.november)
    direct = {row["receiver"]: row for row in statement if row["kind"] == "direct"}
    assert {team: row["cost_usd"] for team, row in direct.items()} == by_hand.direct
    assert {team: row["tokens"] for team, row in direct.items()} == by_hand.tokens
    summary = {row["receiver"]: row for row in november["summary"]}
    for team in TEAMS:
        mine = [row["cost_usd"] for row in statement if row["receiver"] == team]
        assert summary[team]["total_cost_usd"] == sum(mine, Decimal(0))
        assert summary[team]["total_cost_usd"] == (
            summary[team]["direct_cost_usd"] + summary[team]["allocated_cost_usd"]
        )
    assert sum(row["total_cost_usd"] for row in summary.values()) == charged
    assert sum(row["share"] for row in summary.values()) == pytest.approx(1.0, abs=1e-5)


def test_first_matching_rule_takes_a_call_out_of_direct_spend(
    lake: Lake, november: dict[str, list[dict[str, Any]]]
) -> None:
    rules = {row["rule"]: row for row in november["rules"]}
    by_hand = expected(lake.november)
    assert (rules["unattributed"]["calls"], rules["unattributed"]["pool_cost_usd"]) == (
        35,  # 30 batch calls and the 5 untagged evals: unattributed is the first rule
        total(by_hand.unattributed),
    )
    assert (rules["platform-evals"]["calls"], rules["platform-evals"]["pool_cost_usd"]) == (
        20,
        total(by_hand.evals),
    )
    assert [row["position"] for row in november["rules"]] == [1, 2, 3, 4, 5, 6]


def test_direct_spend_spreads_a_pool_by_largest_remainder(
    lake: Lake, november: dict[str, list[dict[str, Any]]]
) -> None:
    by_hand = expected(lake.november)
    pool = pico(total(by_hand.unattributed))
    weights = {team: pico(cost) for team, cost in by_hand.direct.items()}
    exact = {team: Fraction(pool * weight, sum(weights.values())) for team, weight in weights.items()}
    floors = {team: value.numerator // value.denominator for team, value in exact.items()}
    remainder = pool - sum(floors.values())
    # the leftover picodollars go to the largest discarded fractions (ties by name)
    winners = sorted(exact, key=lambda team: (-(exact[team] - floors[team]), team))[:remainder]
    rows = allocated(november["statement"], "unattributed")
    assert set(rows) == set(TEAMS)
    for team, row in rows.items():
        bonus = 1 if team in winners else 0
        assert row["cost_usd"] == usd(floors[team] + bonus), team
        assert row["rounding_pico"] == bonus
        assert row["share"] == round(float(Fraction(weights[team], sum(weights.values()))), 6)
    rule = next(row for row in november["rules"] if row["rule"] == "unattributed")
    assert (rule["remainder_pico"], rule["receivers"]) == (remainder, 4)
    assert sum(row["cost_usd"] for row in rows.values()) == usd(pool)


def test_evenly_gives_the_remainder_to_receivers_by_name(
    lake: Lake, november: dict[str, list[dict[str, Any]]]
) -> None:
    # 100 USD over three receivers: 33.333333333333 each and one picodollar left over, which the
    # first by name (customer-care) gets.
    desk = allocated(november["statement"], "support-desk")
    assert {team: (row["cost_usd"], row["rounding_pico"]) for team, row in desk.items()} == {
        "customer-care": (Decimal("33.333333333334"), 1),
        "discovery": (Decimal("33.333333333333"), 0),
        "payments": (Decimal("33.333333333333"), 0),
    }
    rule = next(row for row in november["rules"] if row["rule"] == "support-desk")
    assert (rule["pool_cost_usd"], rule["remainder_pico"], rule["receivers"]) == (Decimal(100), 1, 3)
    assert "1 remainder picodollars" in rule["note"]

    # the evals pool over every receiver with direct spend: four, in name order for the remainder
    pool = pico(total(expected(lake.november).evals))
    share, left = divmod(pool, 4)
    evals = allocated(november["statement"], "platform-evals")
    assert {team: row["cost_usd"] for team, row in evals.items()} == {
        team: usd(share + (1 if index < left else 0)) for index, team in enumerate(TEAMS)
    }


def test_tokens_and_weights(lake: Lake, november: dict[str, list[dict[str, Any]]]) -> None:
    tokens = expected(lake.november).tokens
    gateway = allocated(november["statement"], "gateway")
    exact = {team: Fraction(90 * PICO * count, sum(tokens.values())) for team, count in tokens.items()}
    for team, row in gateway.items():
        floor = exact[team].numerator // exact[team].denominator
        assert pico(row["cost_usd"]) == floor + row["rounding_pico"], team
    assert sum(row["cost_usd"] for row in gateway.values()) == Decimal(90)

    commitment = allocated(november["statement"], "openai-commitment")
    assert {team: row["cost_usd"] for team, row in commitment.items()} == {
        "payments": Decimal(1500),
        "discovery": Decimal(500),
    }
    assert {team: row["share"] for team, row in commitment.items()} == {"payments": 0.75, "discovery": 0.25}
    rule = next(row for row in november["rules"] if row["rule"] == "openai-commitment")
    assert rule["shared"] == "amount_per_month 2000 USD x 2026-11 30/30 days"


def test_a_pool_without_receivers_stays_unallocated(november: dict[str, list[dict[str, Any]]]) -> None:
    ghost = [row for row in november["statement"] if row["rule"] == "ghost"]
    assert [(row["receiver"], row["kind"], row["cost_usd"]) for row in ghost] == [
        (None, "unallocated", Decimal(10))
    ]
    rule = next(row for row in november["rules"] if row["rule"] == "ghost")
    assert (rule["receivers"], rule["unallocated_cost_usd"], rule["allocated_cost_usd"]) == (
        0,
        Decimal(10),
        Decimal(0),
    )
    last = november["summary"][-1]
    assert (last["receiver"], last["unallocated_cost_usd"], last["total_cost_usd"]) == (
        None,
        Decimal(10),
        Decimal(10),
    )


def test_monthly_amounts_are_prorated_by_the_days_of_each_month(lake: Lake) -> None:
    # 2026-W44 is 2026-10-26 .. 2026-11-01: 6 of October's 31 days and 1 of November's 30.
    week = run_report("chargeback", lake.context(), ReportRequest(period="2026-W44"))
    rules = {row["rule"]: row for row in week.sections["rules"].to_pylist()}
    fees = {"gateway": 90, "openai-commitment": 2000, "support-desk": 100, "ghost": 10}
    prorated = {}
    for name, amount in fees.items():
        exact = Fraction(amount * PICO * 6, 31) + Fraction(amount * PICO, 30)
        prorated[name] = usd(exact.numerator // exact.denominator)  # rounded down to the picodollar
        assert rules[name]["pool_cost_usd"] == prorated[name], name
    assert prorated["openai-commitment"] == Decimal("453.763440860215")
    assert rules["gateway"]["shared"] == "amount_per_month 90 USD x 2026-10 6/31 days, 2026-11 1/30 days"
    calls = lake.between(datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    charged = sum((row["cost_usd"] for row in week.sections["statement"].to_pylist()), Decimal(0))
    assert charged == total(calls) + sum(prorated.values(), Decimal(0))

    day = run_report("chargeback", lake.context(), ReportRequest(period="2026-11-05"))
    commitment = next(row for row in day.sections["rules"].to_pylist() if row["rule"] == "openai-commitment")
    assert commitment["pool_cost_usd"] == Decimal("66.666666666666")  # 2000 / 30, rounded down


def test_proration_and_split_arithmetic() -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    assert prorate_monthly(28 * PICO, start, datetime(2026, 3, 1, tzinfo=UTC)) == 28 * PICO
    assert prorate_monthly(28 * PICO, start, datetime(2026, 2, 8, tzinfo=UTC)) == 7 * PICO
    assert prorate_monthly(3, start, datetime(2026, 2, 2, tzinfo=UTC)) == 0  # 3/28 pico rounds down
    shares = split(10, {"b": Fraction(1), "a": Fraction(1), "c": Fraction(1), "z": Fraction(0)})
    assert [(s.receiver, s.pico, s.rounding_pico) for s in shares] == [("a", 4, 1), ("b", 3, 0), ("c", 3, 0)]
    assert split(10, {"a": Fraction(0)}) == []


def test_without_rules_unattributed_spend_is_an_unallocated_row(lake: Lake) -> None:
    result = run_report("chargeback", lake.context({"cost": "cost_usd"}), ReportRequest(period="2026-11"))
    rows = result.sections["statement"].to_pylist()
    by_team: dict[str | None, Decimal] = defaultdict(Decimal)
    for call in lake.november:
        by_team[call.team] += cost_of(call)
    assert {row["receiver"]: row["cost_usd"] for row in rows} == by_team
    assert [row["kind"] for row in rows if row["receiver"] is None] == ["unallocated"]
    assert rows[-1]["calls"] == 35 and rows[-1]["rule"] is None


def test_rule_values_are_bound_not_interpolated(lake: Lake) -> None:
    hostile = {
        "rules": [
            {"name": "x", "shared": {"where": {"team": ["x' OR '1'='1", "'; DROP VIEW llm_calls; --"]}}}
        ]
    }
    result = run_report("chargeback", lake.context(hostile), ReportRequest(period="2026-11"))
    (rule,) = result.sections["rules"].to_pylist()
    assert (rule["calls"], rule["pool_cost_usd"]) == (0, Decimal(0))


@pytest.mark.parametrize(
    ("chargeback", "message"),
    [
        ({"charge_to": "colour"}, "unknown dimension 'colour'"),
        ({"cost": "price"}, "cost_usd"),
        ({"rules": [{"name": "a", "shared": {}}]}, "exactly one of"),
        (
            {"rules": [{"name": "a", "shared": {"unattributed": True, "amount_per_month": "5"}}]},
            "exactly one",
        ),
        ({"rules": [{"name": "a", "shared": {"where": {"colour": ["red"]}}}]}, "unknown dimension"),
        ({"rules": [{"name": "a", "shared": {"where": {"service": []}}}]}, "at least one value"),
        ({"rules": [{"name": "a", "shared": {"amount_per_month": "-1"}}]}, "greater than or equal to 0"),
        ({"rules": [{"name": "a", "shared": {"unattributed": True}, "spread": "weights"}]}, "needs weights"),
        (
            {"rules": [{"name": "a", "shared": {"unattributed": True}, "weights": {"x": 1}}]},
            "only read with spread: weights",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "shared": {"unattributed": True},
                        "spread": "weights",
                        "weights": {"x": 1},
                        "among": ["x"],
                    }
                ]
            },
            "drop among",
        ),
        (
            {
                "rules": [
                    {"name": "a", "shared": {"unattributed": True}, "spread": "weights", "weights": {"x": 0}}
                ]
            },
            "at least one positive",
        ),
        ({"rules": [{"name": "a b", "shared": {"unattributed": True}}]}, "letters, digits"),
        (
            {
                "rules": [
                    {"name": "a", "shared": {"unattributed": True}},
                    {"name": "a", "shared": {"unattributed": True}},
                ]
            },
            "repeated: a",
        ),
        ({"rules": [{"name": "a", "shared": {"unattributed": True}, "spread": "by_vibes"}]}, "evenly"),
        ({"rulez": []}, "Extra inputs are not permitted"),
    ],
)
def test_config_validation_errors(chargeback: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ChargebackConfig.model_validate(chargeback)


def test_config_errors_name_the_path(tmp_path: Path) -> None:
    bad = {
        "reports": {"chargeback": {"rules": [{"name": "a", "shared": {"unattributed": True}, "spread": "x"}]}}
    }
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"reports\.chargeback\.rules\.0\.spread|reports\.chargeback\.rules\[0\]"
    ):
        load_config(path, environ={})


def test_by_and_filter_are_refused(lake: Lake) -> None:
    with pytest.raises(ValueError, match="no --by"):
        run_report("chargeback", lake.context(), ReportRequest(period="2026-11", by="feature"))
    with pytest.raises(ValueError, match="no --filter"):
        run_report(
            "chargeback", lake.context(), ReportRequest(period="2026-11", filters={"team": "payments"})
        )


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_close_writes_parquet_csv_and_manifest_that_read_back(lake: Lake, tmp_path: Path) -> None:
    context = lake.context(statements=tmp_path)
    live = run_report("chargeback", context, ReportRequest(period="2026-11"))
    info = close_statement(context, "2026-11")
    assert (info.version, info.written, info.previous_version, info.diff_path) == (1, True, None, None)
    assert info.path == tmp_path / "chargeback" / "2026-11" / "v1"
    assert sorted(p.name for p in info.path.iterdir()) == [
        "manifest.json",
        "statement.csv",
        "statement.parquet",
    ]
    assert info.charged_usd == total(lake.november) + FIXED

    assert pq.read_table(info.path / "statement.parquet").equals(live.sections["statement"])
    rows = read_csv(info.path / "statement.csv")
    assert [(r["receiver"] or None, r["kind"], r["rule"] or None, Decimal(r["cost_usd"])) for r in rows] == [
        (r["receiver"], r["kind"], r["rule"], r["cost_usd"]) for r in live.sections["statement"].to_pylist()
    ]
    manifest = json.loads((info.path / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["period"]["label"], manifest["version"], manifest["previous_version"]) == (
        "2026-11",
        1,
        None,
    )
    assert manifest["created_at"] == NOW.isoformat()
    assert Decimal(manifest["totals"]["charged_usd"]) == info.charged_usd
    assert Decimal(manifest["totals"]["fixed_usd"]) == FIXED
    assert Decimal(manifest["totals"]["spent_usd"]) == total(lake.november)
    assert [rule["name"] for rule in manifest["rules"]] == [rule["name"] for rule in RULES["rules"]]
    assert manifest["rules"][3]["weights"] == {"payments": "3", "discovery": "1"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((info.path / name).read_bytes()).hexdigest() == entry["sha256"], name

    closed = latest_statement(tmp_path, "2026-11")
    assert closed is not None and closed.info.version == 1 and closed.table.equals(live.sections["statement"])

    # the same numbers again: nothing is written
    again = close_statement(context, "2026-11")
    assert (again.version, again.written) == (1, False)
    assert statement_versions(tmp_path, "2026-11") == [1]
    assert sorted(p.name for p in (tmp_path / "chargeback" / "2026-11").iterdir()) == [".lock", "v1"]
    # the close is in the lake's audit log, once: the second close wrote nothing
    closes = [e for e in read_entries(Path(context.lake_dir)) if e["target"] == "2026-11"]
    assert [(e["actor"], e["action"], e["before"], e["after"]["version"]) for e in closes] == [
        (command_actor(), "statement.close", None, 1)
    ]
    assert Decimal(closes[0]["after"]["charged_usd"]) == info.charged_usd

    notes = run_report("chargeback", context, ReportRequest(period="2026-11")).notes
    assert any("2026-11 is closed: statement v1" in n and "still equal it" in n for n in notes), notes

    # a statement whose file no longer matches its manifest is refused, never half-trusted
    (info.path / "statement.csv").write_text("receiver\n", encoding="utf-8")
    with pytest.raises(StatementError, match="does not match the sha256"):
        read_statement(tmp_path, "2026-11", 1)


def test_only_a_finished_named_period_can_be_closed(lake: Lake, tmp_path: Path) -> None:
    context = lake.context(statements=tmp_path)
    with pytest.raises(StatementError, match="has not ended"):
        close_statement(context, "2026-12")
    with pytest.raises(StatementError, match="expected a period"):
        close_statement(context, "last month")
    with pytest.raises(StatementError, match="no statements directory"):
        close_statement(lake.context(), "2026-11")
    with pytest.raises(StatementError, match="no statement v3"):
        read_statement(tmp_path, "2026-11", 3)
    assert latest_statement(tmp_path, "2026-11") is None


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_report_as_json(lake: Lake, tmp_path: Path) -> None:
    config = tmp_path / "otelcost.yaml"
    config.write_text(json.dumps({"reports": {"chargeback": RULES}}), encoding="utf-8")
    result = invoke(
        "report", "chargeback", "-c", str(config), "--data-dir", str(lake.data_dir),
        "--period", "2026-11", "--format", "json",
    )  # fmt: skip
    document = json.loads(result.output)
    assert list(document["sections"]) == ["statement", "summary", "rules"]
    charged = sum(Decimal(row["cost_usd"]) for row in document["sections"]["statement"])
    assert charged == total(lake.november) + FIXED
    assert document["period"]["label"] == "2026-11"
    assert document["notes"][0].startswith("charged to team at cost_usd")


@pytest.mark.slow
def test_a_reprice_makes_the_reclose_write_v2_with_a_diff(lake: Lake, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(lake.data_dir, data_dir)
    catalog = tmp_path / "negotiated.yaml"
    catalog.write_text(GPT_4O_MINI_DOUBLED, encoding="utf-8")
    plain, repriced = tmp_path / "plain.yaml", tmp_path / "repriced.yaml"
    plain.write_text(json.dumps({"reports": {"chargeback": RULES}}), encoding="utf-8")
    repriced.write_text(
        json.dumps({"reports": {"chargeback": RULES}, "pricing": {"catalogs": [str(catalog)]}}),
        encoding="utf-8",
    )
    common = ["--data-dir", str(data_dir)]

    first = invoke("report", "chargeback", "-c", str(plain), *common, "--close", "2026-11")
    v1 = data_dir / "statements" / "chargeback" / "2026-11" / "v1"
    assert first.output.startswith(f"closed 2026-11 as v1: {v1}")
    v1_bytes = {p.name: p.read_bytes() for p in v1.iterdir()}
    unchanged = invoke("report", "chargeback", "-c", str(plain), *common, "--close", "2026-11")
    assert "2026-11 is unchanged: statement v1" in unchanged.output

    invoke("reprice", "-c", str(repriced), *common, "--since", "2026-10-01", "-f", "json")
    stale = invoke("report", "chargeback", "-c", str(repriced), *common, "--period", "2026-11", "-f", "json")
    assert any("differ from it" in n and "writes v2" in n for n in json.loads(stale.output)["notes"])

    second = invoke("report", "chargeback", "-c", str(repriced), *common, "--close", "2026-11", "-f", "json")
    info = json.loads(second.output)
    assert (info["version"], info["written"], info["previous_version"]) == (2, True, 1)
    assert {p.name: p.read_bytes() for p in v1.iterdir()} == v1_bytes  # v1 is never rewritten

    # gpt-4o-mini doubled: every gpt-4o-mini call of November costs its cost_of once more
    mini = [call for call in lake.november if call.model == "gpt-4o-mini"]
    assert Decimal(info["charged_usd"]) == total(lake.november) + FIXED + total(mini)
    diff = {(r["receiver"] or None, r["rule"] or None): r for r in read_csv(Path(info["diff"]))}
    care = expected(lake.november).direct["customer-care"]  # support-bot runs on gpt-4o-mini only
    row = diff[("customer-care", None)]
    assert (Decimal(row["before"]), Decimal(row["after"]), Decimal(row["change"])) == (care, 2 * care, care)
    assert ("payments", None) not in diff  # payments runs on gpt-4o: unchanged, not in the diff
    assert ("payments", "openai-commitment") not in diff
    assert all(Decimal(r["after"]) - Decimal(r["before"]) == Decimal(r["change"]) for r in diff.values())
    assert sum(Decimal(r["change"]) for r in diff.values()) == total(mini)
    manifest = json.loads((Path(info["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"statement.parquet", "statement.csv", "diff.csv"}

"""The budgets YAML validates exactly as the issue writes it, and errors name the path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.cli import main
from otelcost.config import load_config
from otelcost.errors import ConfigError

# The issue's text exactly as written (a trailing backslash joins the one line that is too long).
ISSUE_YAML = """
budgets:
  - name: team-monthly
    scope: {team: "*"}          # '*' = one independent budget per distinct value
    window: month               # hour | day | week | month | quarter, or rolling: 1m, 1h, 24h ...
    metric: cost_usd            # cost_usd | effective_cost_usd | input_tokens | output_tokens \
| total_tokens | requests
    limit: 5000
    thresholds:
      - {at: 0.5, action: notify}
      - {at: 0.8, action: notify}
      - {at: 1.0, action: throttle}
      - {at: 1.2, action: block}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def test_the_issue_example_validates_as_written(tmp_path: Path) -> None:
    config = load(tmp_path, ISSUE_YAML)
    (budget,) = config.budgets  # type: ignore[attr-defined]
    assert budget.name == "team-monthly"
    assert budget.scope == {"team": "*"}
    assert budget.window == "month"
    assert budget.metric == "cost_usd"
    assert budget.limit == Decimal(5000)
    assert [(t.at, t.action) for t in budget.thresholds] == [
        (Decimal("0.5"), "notify"),
        (Decimal("0.8"), "notify"),
        (Decimal("1.0"), "throttle"),
        (Decimal("1.2"), "block"),
    ]
    assert budget.wildcard_dimensions == ("team",)


def test_every_scope_form_and_rolling_windows(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
budgets:
  - name: agents-tpm
    scope: {workflow: "*", environment: production}
    window: 1m
    metric: total_tokens
    limit: 200000
  - name: big-models
    scope: {model: [gpt-4o, claude-sonnet-4-5], provider: "*", tenant_id: "*"}
    window: 24h
    metric: requests
    limit: 10000
    timezone: Europe/Berlin
  - name: everything
    window: quarter
    metric: effective_cost_usd
    limit: 250000.50
""",
    )
    budgets = config.budgets  # type: ignore[attr-defined]
    assert [b.window for b in budgets] == ["1m", "24h", "quarter"]
    assert budgets[1].scope["model"] == ["gpt-4o", "claude-sonnet-4-5"]
    assert budgets[2].scope == {}
    assert budgets[2].limit == Decimal("250000.50")
    # Thresholds default to notify at 80 %, block at 100 %.
    assert [t.action for t in budgets[0].thresholds] == ["notify", "block"]


def test_thresholds_are_sorted() -> None:
    budget = BudgetConfig.model_validate(
        {
            "name": "b",
            "window": "day",
            "limit": 10,
            "thresholds": [{"at": 1.2, "action": "block"}, {"at": 0.5, "action": "notify"}],
        }
    )
    assert [t.at for t in budget.thresholds] == [Decimal("0.5"), Decimal("1.2")]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("{name: b, window: fortnight, limit: 1}", "budgets[0].window: expected hour, day, week"),
        ("{name: b, window: day, limit: 0}", "budgets[0].limit: Input should be greater than 0"),
        (
            "{name: b, window: day, limit: 1, scope: {teem: '*'}}",
            "budgets[0].scope: unknown dimension 'teem'",
        ),
        ("{name: b, window: day, limit: 1, scope: {team: [a, '*']}}", "team: '*' cannot be part of a list"),
        ("{name: b, window: day, limit: 1, scope: {team: []}}", "team: a list of values must not be empty"),
        ("{name: b, window: day, limit: 1, timezone: Mars/Base}", "budgets[0].timezone: unknown time zone"),
        ("{name: b, window: day, limit: 1, metric: dollars}", "budgets[0].metric: Input should be"),
        ("{name: b, window: day, limit: 1.5, metric: requests}", "a requests limit is a whole number"),
        ("{name: b, window: day, limit: 0.0000000000001}", "at most 12 decimal places"),
        ("{name: 'a b', window: day, limit: 1}", "budgets[0].name: must be 1-128 letters"),
        ("{name: b, window: day, limit: 1, windw: day}", "budgets[0].windw: unknown key"),
        (
            "{name: b, window: day, limit: 1, "
            "thresholds: [{at: 1, action: block}, {at: 1.0, action: notify}]}",
            "budgets[0].thresholds: two thresholds at 1.0",
        ),
        (
            "{name: b, window: day, limit: 1, thresholds: [{at: 1, action: kill}]}",
            "budgets[0].thresholds[0].action",
        ),
        ("{name: b, window: day, limit: 1, thresholds: []}", "at least one threshold"),
    ],
)
def test_invalid_budgets_name_the_path(tmp_path: Path, budget: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"budgets:\n  - {budget}\n")
    assert message in str(caught.value)


def test_budgeting_settings_validate() -> None:
    settings = BudgetingConfig.model_validate(
        {"timezone": "Europe/Berlin", "dedup_horizon": "10m", "alerts": {"webhook_url": "http://x/hook"}}
    )
    assert settings.dedup_horizon.total_seconds() == 600
    with pytest.raises(ValueError, match="unknown time zone"):
        BudgetingConfig.model_validate({"timezone": "Nowhere/Land"})
    with pytest.raises(ValueError, match="http"):
        BudgetingConfig.model_validate({"alerts": {"webhook_url": "ftp://x"}})


def test_the_store_is_memory_or_a_redis_url_and_its_password_is_never_shown(tmp_path: Path) -> None:
    assert not BudgetingConfig().shared
    with pytest.raises(ConfigError, match=r"budgeting\.store: .*redis://"):
        load_config(environ={"OTELCOST_BUDGETING__STORE": "postgres://db/otelcost"})
    config = load_config(
        environ={"OTELCOST_BUDGETING__STORE": "redis://otelcost:s3cret@redis.internal:6380/2"}
    )
    assert config.budgeting.shared
    assert config.budgeting.store_display == "redis://otelcost:***@redis.internal:6380/2"
    plain = BudgetingConfig(store="rediss://redis.internal:6379/0")
    assert plain.store_display == plain.store
    shown = CliRunner().invoke(
        main,
        ["config", "show", "--data-dir", str(tmp_path)],
        env={"OTELCOST_BUDGETING__STORE": "redis://otelcost:s3cret@redis.internal:6380/2"},
    )
    assert shown.exit_code == 0, shown.output
    assert "s3cret" not in shown.output and "redis://otelcost:***@redis.internal:6380/2" in shown.output

"""The ``reports:`` section of the pipeline configuration (docs/reports.md has the reference).

Example::

    reports:
      chargeback:
        charge_to: team                 # who receives the bill: team | cost_center | tenant_id | project ...
        cost: effective_cost_usd        # or cost_usd (list price)
        rules:
          - name: unattributed
            shared: {unattributed: true}          # calls whose charge_to is empty
            spread: direct_spend                  # evenly | direct_spend | tokens | weights
          - name: platform
            shared: {where: {service: [eval-runner, embeddings-indexer]}}
            spread: evenly
          - name: openai-commitment
            shared: {amount_per_month: "2000"}    # a fee no span carries (provisioned throughput)
            spread: weights
            weights: {payments: 3, discovery: 1}
      anomalies:
        min_daily_usd: "1"
      unit_economics:
        outcome_attribute: app.outcome

Every model forbids unknown keys; errors name the path (``reports.chargeback.rules[0].spread``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from otelcost.configtypes import Section
from otelcost.reports.dimensions import parse_dimensions

__all__ = [
    "AllocationRule",
    "AnomaliesConfig",
    "ChargebackConfig",
    "ForecastConfig",
    "ReportsConfig",
    "SharedSpend",
    "UnitEconomicsConfig",
]

_RULE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check_dimension(name: str) -> str:
    (canonical,) = parse_dimensions(name)
    return canonical


class SharedSpend(Section):
    """What a rule shares out. Exactly one of ``unattributed``, ``where`` or ``amount_per_month``."""

    unattributed: bool = Field(False, description="The calls with no value for chargeback.charge_to.")
    where: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Calls whose dimensions have one of these values (e.g. {service: [eval-runner]}).",
    )
    amount_per_month: Decimal | None = Field(
        None,
        ge=0,
        description="A fixed USD amount per calendar month that no span carries (a commitment, "
        "provisioned throughput); a report period gets its share by the days it covers.",
    )

    @field_validator("where")
    @classmethod
    def _check_where(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {_check_dimension(name): values for name, values in value.items()}

    @model_validator(mode="after")
    def _exactly_one(self) -> SharedSpend:
        chosen = [bool(self.unattributed), bool(self.where), self.amount_per_month is not None]
        if sum(chosen) != 1:
            raise ValueError("name exactly one of unattributed, where, amount_per_month")
        return self


class AllocationRule(Section):
    """One allocation: a pool of shared spend and how it is spread over the receivers."""

    name: str = Field(description="Unique; every allocated row names its rule.")
    description: str = ""
    shared: SharedSpend
    spread: Literal["evenly", "direct_spend", "tokens", "weights"] = Field(
        "direct_spend",
        description="evenly; proportional to each receiver's direct spend or tokens; or by weights.",
    )
    weights: dict[str, Decimal] = Field(
        default_factory=dict, description="Receiver -> weight (spread: weights); only these receive."
    )
    among: list[str] = Field(
        default_factory=list,
        description="Receivers that share this pool; empty: every receiver with direct spend in the period.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _RULE_NAME_RE.match(value):
            raise ValueError(
                "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _weights_iff_weighted(self) -> AllocationRule:
        if self.spread == "weights":
            if not self.weights:
                raise ValueError("spread: weights needs weights")
            if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
                raise ValueError("weights must be non-negative and at least one positive")
        elif self.weights:
            raise ValueError(f"weights are only read with spread: weights, not {self.spread}")
        return self


class ChargebackConfig(Section):
    """Who is charged, at which cost, and the allocation rules, applied in order."""

    charge_to: str = Field("team", description="The dimension that receives the bill.")
    cost: Literal["cost_usd", "effective_cost_usd"] = Field(
        "effective_cost_usd", description="Which cost is charged: list price or after discounts."
    )
    rules: list[AllocationRule] = Field(default_factory=list)

    @field_validator("charge_to")
    @classmethod
    def _check_charge_to(cls, value: str) -> str:
        return _check_dimension(value)

    @model_validator(mode="after")
    def _unique_rules(self) -> ChargebackConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        return self


class AnomaliesConfig(Section):
    """Thresholds of the anomaly detectors (docs/reports.md, "anomalies")."""

    dimensions: list[str] = Field(
        default_factory=lambda: ["team", "feature", "model", "tenant_id", "service"],
        description="Scopes whose daily spend is watched.",
    )
    baseline_days: int = Field(28, ge=7, description="Trailing days of the baseline.")
    min_baseline_days: int = Field(7, ge=3, description="Days of history a scope needs before it is judged.")
    threshold: Decimal = Field(
        Decimal("5"), gt=0, description="Robust z-score (distance from the median in MADs) that is a spike."
    )
    min_daily_usd: Decimal = Field(
        Decimal("1"), ge=0, description="Days below this spend are never findings."
    )
    min_ratio: Decimal = Field(
        Decimal("2"), gt=1, description="A spike is also at least this times the median."
    )
    week_over_week_ratio: Decimal = Field(
        Decimal("2"), gt=1, description="A week this times the week before."
    )
    runaway_factor: Decimal = Field(
        Decimal("10"),
        gt=1,
        description="Calls per minute of one trace/session above this times its workflow's norm.",
    )
    runaway_min_calls_per_minute: int = Field(30, ge=1, description="Never a runaway below this rate.")
    model_switch_ratio: Decimal = Field(
        Decimal("2"), gt=1, description="Cost per call of a feature stepping up this much."
    )
    context_growth_ratio: Decimal = Field(
        Decimal("3"), gt=1, description="Input tokens of a session's last calls this times its first calls."
    )
    non_production_share: Decimal = Field(
        Decimal("0.2"),
        gt=0,
        le=1,
        description="Share of spend from non-production environments that is a finding.",
    )
    streaming: bool = Field(
        True, description="Run the runaway and spike detectors in serve over the live stream."
    )

    @field_validator("dimensions")
    @classmethod
    def _check_dimensions(cls, value: list[str]) -> list[str]:
        return list(parse_dimensions(value))


class ForecastConfig(Section):
    """The forecast's interval and history."""

    interval: Decimal = Field(Decimal("0.8"), gt=0, lt=1, description="Coverage of the prediction interval.")
    history_days: int = Field(56, ge=14, description="Days of daily spend the model is fit on.")


class UnitEconomicsConfig(Section):
    """Where business outcomes come from when no --outcomes file is given."""

    outcome_attribute: str = Field(
        "app.outcome", description="Span attribute naming the outcome a call served (resolved_ticket ...)."
    )


class ReportsConfig(Section):
    """``reports:``: chargeback rules and the thresholds of the other reports."""

    chargeback: ChargebackConfig = ChargebackConfig()
    anomalies: AnomaliesConfig = AnomaliesConfig()
    forecast: ForecastConfig = ForecastConfig()
    unit_economics: UnitEconomicsConfig = UnitEconomicsConfig()

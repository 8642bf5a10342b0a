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
from datetime import timedelta
from decimal import Decimal
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from otelcost.configtypes import Duration, Section
from otelcost.reports.dimensions import parse_dimensions

__all__ = [
    "AllocationRule",
    "AnomaliesConfig",
    "ChargebackConfig",
    "ForecastConfig",
    "OptimizeConfig",
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
        checked: dict[str, list[str]] = {}
        for name, values in value.items():
            if not values:
                raise ValueError(f"where.{name}: name at least one value")
            checked[_check_dimension(name)] = values
        return checked

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
            if self.among:
                raise ValueError("spread: weights shares among the receivers of weights; drop among")
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
    """Thresholds of the anomaly detectors: the ``anomalies`` report over the lake and the live
    detectors of ``otelcost serve`` (docs/reports.md, "anomalies").

    Spend is list price (``cost_usd``). Fields without a "Live" prefix mean the same to both;
    the report reads days, the live detectors minutes (``spike_*``, ``stream_*``).
    """

    dimensions: list[str] = Field(
        default_factory=lambda: ["team", "feature", "model", "tenant_id", "service"],
        description="Scopes whose spend is watched for spikes and week-over-week jumps (in the "
        "report, --by replaces them).",
    )
    baseline_days: int = Field(
        28,
        ge=7,
        description="Report: trailing days of the baseline; a day is compared with the same kind "
        "of day (weekday or weekend) among this many days before it.",
    )
    min_baseline_days: int = Field(
        7,
        ge=3,
        description="Report: days with traffic since a scope (or feature) first spent, within "
        "baseline_days, before its days are judged.",
    )
    threshold: Decimal = Field(
        Decimal("5"),
        gt=0,
        description="A spike's excess over the median is at least this many MADs (median "
        "absolute deviations). The report floors the MAD at mad_floor times the median and at the "
        "chance noise of the scope's calls, and holds week-over-week jumps to the same bar.",
    )
    mad_floor: Decimal = Field(
        Decimal("0.05"),
        ge=0,
        lt=1,
        description="Report: the MAD is taken as at least this share of the median, so a scope "
        "whose spend never varied is not a spike for every extra cent.",
    )
    min_daily_usd: Decimal = Field(
        Decimal("1"),
        ge=0,
        description="Report: a day (a week: per day) spending less is never a spike, jump, model "
        "switch or non-production finding; a runaway loop or context growth spending less in "
        "all is never a finding.",
    )
    min_ratio: Decimal = Field(
        Decimal("2"), gt=1, description="A spike is also at least this times the median."
    )
    week_over_week_ratio: Decimal = Field(
        Decimal("2"), gt=1, description="Report: a week spending this times the week before is a jump."
    )
    runaway_factor: Decimal = Field(
        Decimal("10"),
        gt=1,
        description="Calls (report: or tokens) per minute of one trace/session at or above this "
        "times its workflow's norm (the median peak of its recent traces/sessions).",
    )
    runaway_min_calls_per_minute: int = Field(30, ge=1, description="Never a runaway below this rate.")
    runaway_min_tokens_per_minute: int = Field(
        500_000,
        ge=1,
        description="Report: a trace/session also runs away at this many tokens (input + output) "
        "a minute and runaway_factor times its workflow's token norm.",
    )
    model_switch_ratio: Decimal = Field(
        Decimal("2"),
        gt=1,
        description="Report: a feature's cost per call at least this times its baseline median.",
    )
    model_switch_min_shift: Decimal = Field(
        Decimal("0.2"),
        gt=0,
        le=1,
        description="Report: and at least this share of its calls moved to other models than in "
        "the baseline (otherwise it is not a switch: context growth and longer answers raise the "
        "cost per call too).",
    )
    context_growth_ratio: Decimal = Field(
        Decimal("3"),
        gt=1,
        description="Report: mean input tokens of a session's last third of calls (of one feature) "
        "this times those of its first third.",
    )
    context_growth_min_calls: int = Field(
        6, ge=3, description="Report: calls a session needs (of one feature) before its growth is judged."
    )
    non_production_share: Decimal = Field(
        Decimal("0.2"),
        gt=0,
        le=1,
        description="Report: a day on which a non-production environment makes this share of "
        "all spend is a finding.",
    )
    production_environments: list[str] = Field(
        default_factory=lambda: ["production", "prod"],
        description="Report: environment values that are production (case-insensitive); any "
        "other set value is non-production, an unset one is not judged.",
    )
    streaming: bool = Field(
        True, description="Run the runaway and spike detectors in serve over the live stream."
    )
    spike_window: Duration = Field(
        timedelta(minutes=5),
        description="Live spike detection: spend of each scope is summed in windows this long (event time).",
    )
    spike_baseline: Duration = Field(
        timedelta(hours=1),
        description="Live spike detection: a window is judged against the median of the windows "
        "this long before it.",
    )
    spike_min_baseline: Duration = Field(
        timedelta(minutes=30),
        description="Live spike detection: traffic seen within spike_baseline before a scope can be judged.",
    )
    spike_min_usd: Decimal = Field(
        Decimal("1"),
        ge=0,
        description="Live spike detection: a window spending less than this is never a spike.",
    )
    stream_max_lateness: Duration = Field(
        timedelta(minutes=10),
        description="Live detection: calls older than this still teach the baselines but never "
        "raise an alert.",
    )
    stream_cooldown: Duration = Field(
        timedelta(hours=1),
        description="Live detection: after an alert, the same kind and scope stay quiet this long.",
    )
    stream_max_keys: int = Field(
        100_000,
        ge=100,
        description="Live detection: traces, sessions and scopes remembered (each); the least "
        "recent go first.",
    )

    @model_validator(mode="after")
    def _check_streaming_windows(self) -> AnomaliesConfig:
        if self.spike_window < timedelta(seconds=10):
            raise ValueError("spike_window must be at least 10s")
        if self.spike_baseline < 2 * self.spike_window:
            raise ValueError("spike_baseline must be at least twice spike_window")
        if not self.spike_window <= self.spike_min_baseline <= self.spike_baseline:
            raise ValueError("spike_min_baseline must be between spike_window and spike_baseline")
        return self

    @field_validator("dimensions")
    @classmethod
    def _check_dimensions(cls, value: list[str]) -> list[str]:
        return list(parse_dimensions(value))

    @model_validator(mode="after")
    def _check_history(self) -> AnomaliesConfig:
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days must not exceed baseline_days")
        return self


class ForecastConfig(Section):
    """The forecast's interval, history and cost (docs/reports.md, "forecast")."""

    interval: Decimal = Field(
        Decimal("0.8"),
        gt=0,
        lt=1,
        description="Coverage of the prediction interval: the share of back-tested outcomes it held.",
    )
    history_days: int = Field(
        56, ge=14, le=366, description="Days of daily spend the model is fit on (the most recent)."
    )
    backtest_days: int = Field(
        120,
        ge=0,
        le=730,
        description="Further days before those whose forecasts, made and checked in hindsight, "
        "calibrate the interval; more days, more back-tested forecasts per horizon.",
    )
    cost: Literal["cost_usd", "effective_cost_usd"] = Field(
        "effective_cost_usd",
        description="Which cost team and feature projections are in: list price or after discounts "
        "(a budget is projected in its own metric).",
    )


class UnitEconomicsConfig(Section):
    """Where business outcomes come from when no --outcomes file is given."""

    outcome_attribute: str = Field(
        "app.outcome", description="Span attribute naming the outcome a call served (resolved_ticket ...)."
    )
    cost: Literal["cost_usd", "effective_cost_usd"] = Field(
        "effective_cost_usd",
        description="Which cost the units are measured in: list price or after discounts.",
    )


DEFAULT_CHEAPER_MODELS: Final[dict[str, str]] = {
    "openai/gpt-4o": "openai/gpt-4o-mini",
    "openai/gpt-4.1": "openai/gpt-4.1-mini",
    "openai/gpt-5": "openai/gpt-5-mini",
    "openai/o3": "openai/o4-mini",
    "anthropic/claude-opus-4-1": "anthropic/claude-sonnet-4-5",
    "anthropic/claude-sonnet-4-5": "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4": "anthropic/claude-haiku-4-5",
    "gcp.gemini/gemini-2.5-pro": "gcp.gemini/gemini-2.5-flash",
}


class OptimizeConfig(Section):
    """What the optimize report counts as an opportunity (docs/reports.md, "optimize")."""

    cheaper_models: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CHEAPER_MODELS),
        description="Catalog entry (provider/id) -> the cheaper entry of the same provider a "
        "right-sizing what-if prices it on.",
    )
    short_output_tokens: int = Field(
        300,
        ge=1,
        description="Features whose mean output per call is at most this are right-sizing candidates.",
    )
    cacheable_share: Decimal = Field(
        Decimal("0.5"),
        gt=0,
        le=1,
        description="Share of uncached input the caching what-if assumes could be read from the cache.",
    )
    min_cacheable_input_tokens: int = Field(
        1024,
        ge=0,
        description="Mean input per call below which prompt caching is not proposed (provider minimum).",
    )
    max_cache_hit_rate: Decimal = Field(
        Decimal("0.2"), ge=0, le=1, description="Features at or above this cache hit rate are not proposed."
    )
    non_interactive_share: Decimal = Field(
        Decimal("0.9"),
        gt=0,
        le=1,
        description="Share of a feature's calls without user_id and session_id that makes it a "
        "batch candidate.",
    )

    @field_validator("cheaper_models")
    @classmethod
    def _check_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            for key in (source, target):
                if "/" not in key:
                    raise ValueError(
                        f"{key!r}: expected a catalog entry provider/id, such as openai/gpt-4o-mini"
                    )
        return value


class ReportsConfig(Section):
    """``reports:``: chargeback rules and the thresholds of the other reports."""

    chargeback: ChargebackConfig = ChargebackConfig()
    anomalies: AnomaliesConfig = AnomaliesConfig()
    forecast: ForecastConfig = ForecastConfig()
    unit_economics: UnitEconomicsConfig = UnitEconomicsConfig()
    optimize: OptimizeConfig = OptimizeConfig()

"""Configuration of spend budgets (``budgets:``) and of the evaluator (``budgeting:``).

Example (docs/budgets.md has the full reference)::

    budgets:
      - name: team-monthly
        scope: {team: "*"}          # '*' = one independent budget per distinct value
        window: month               # hour | day | week | month | quarter, or rolling: 1m, 1h, 24h ...
        metric: cost_usd            # cost_usd | effective_cost_usd | input_tokens | output_tokens
                                    #   | total_tokens | requests
        limit: 5000
        thresholds:
          - {at: 0.5, action: notify}
          - {at: 0.8, action: notify}
          - {at: 1.0, action: throttle}
          - {at: 1.2, action: block}

    budgeting:
      timezone: Europe/Berlin       # calendar windows of budgets that name no timezone
      alerts: {webhook_url: https://hooks.slack.com/services/...}

Every model forbids unknown keys; errors name the path (``budgets[0].window: ...``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from otelcost.budgets.windows import Window, load_zone, parse_window
from otelcost.configtypes import Duration, Section
from otelcost.schema import ATTRIBUTION_DIMENSIONS

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "SCOPE_DIMENSIONS",
    "AlertsConfig",
    "BudgetConfig",
    "BudgetingConfig",
    "Metric",
    "ScopeDimension",
    "ThresholdConfig",
    "check_dimensions",
]

ScopeDimension = Literal[
    "team",
    "feature",
    "user_id",
    "tenant_id",
    "session_id",
    "project",
    "cost_center",
    "workflow",
    "environment",
    "service",
    "provider",
    "model",
]
SCOPE_DIMENSIONS: Final[tuple[str, ...]] = ScopeDimension.__args__  # type: ignore[attr-defined]
"""Record columns a budget scope can name: every attribution dimension plus the call's
``service``, ``provider`` and (catalog) ``model``."""
assert set(ATTRIBUTION_DIMENSIONS) <= set(SCOPE_DIMENSIONS)

Metric = Literal[
    "cost_usd", "effective_cost_usd", "input_tokens", "output_tokens", "total_tokens", "requests"
]
METRICS: Final[tuple[str, ...]] = Metric.__args__  # type: ignore[attr-defined]
MONEY_METRICS: Final = frozenset({"cost_usd", "effective_cost_usd"})


def check_dimensions(scope: Mapping[str, object]) -> None:
    """ValueError naming the first key of ``scope`` that is not a scope dimension."""
    for dim in scope:
        if dim not in SCOPE_DIMENSIONS:
            raise ValueError(f"unknown dimension {dim!r}; expected one of {', '.join(SCOPE_DIMENSIONS)}")


ThresholdAction = Literal["notify", "throttle", "block"]

WILDCARD: Final = "*"
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ThresholdConfig(Section):
    """A fraction of the limit and what happens from there on (``{at: 0.8, action: notify}``)."""

    at: Decimal = Field(gt=0, description="Fraction of the limit: 0.8 is 80 %, 1.2 is 120 %.")
    action: ThresholdAction = Field(description="notify (allowed, alert), throttle or block.")
    alert: bool = Field(True, description="POST a webhook alert when the threshold is crossed.")


DEFAULT_THRESHOLDS: Final = (
    ThresholdConfig(at=Decimal("0.8"), action="notify"),
    ThresholdConfig(at=Decimal("1"), action="block"),
)

ScopeTerm = Annotated[str | list[str], Field(description="'*', one exact value, or a list of values.")]


class BudgetConfig(Section):
    """One budget rule: a scope, a window, a metric, a limit and thresholds."""

    name: str = Field(description="Unique name; letters, digits, '_', '.', '-'.")
    description: str = ""
    scope: dict[str, ScopeTerm] = Field(
        default_factory=dict,
        description="Dimension -> '*' (one budget per value), a value, or a list (one shared budget). "
        "Empty: one budget over all calls.",
    )
    window: str = Field(description="hour | day | week | month | quarter, or a rolling duration (1m, 24h).")
    metric: Metric = "cost_usd"
    limit: Decimal = Field(gt=0, description="USD for the cost metrics, a count otherwise.")
    thresholds: tuple[ThresholdConfig, ...] = Field(
        DEFAULT_THRESHOLDS, description="Sorted by 'at' on load; each 'at' at most once."
    )
    timezone: str | None = Field(
        None, description="IANA zone of calendar windows; default budgeting.timezone."
    )
    webhook_url: str | None = Field(
        None, description="Alert webhook of this budget; default budgeting.alerts."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("scope")
    @classmethod
    def _check_scope(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        check_dimensions(value)
        for dim, term in value.items():
            if isinstance(term, list):
                if not term:
                    raise ValueError(f"{dim}: a list of values must not be empty")
                if WILDCARD in term:
                    raise ValueError(f"{dim}: '*' cannot be part of a list; use '*' alone")
                if len(set(term)) != len(term):
                    raise ValueError(f"{dim}: values are repeated")
            elif not term:
                raise ValueError(f"{dim}: the value must not be empty")
        return value

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        parse_window(value, load_zone("UTC"))
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            load_zone(value)
        return value

    @field_validator("thresholds")
    @classmethod
    def _sort_thresholds(cls, value: tuple[ThresholdConfig, ...]) -> tuple[ThresholdConfig, ...]:
        if not value:
            raise ValueError("at least one threshold is needed")
        ordered = tuple(sorted(value, key=lambda t: t.at))
        for earlier, later in itertools.pairwise(ordered):
            if earlier.at == later.at:
                raise ValueError(f"two thresholds at {later.at}")
        return ordered

    @model_validator(mode="after")
    def _check_limit_units(self) -> BudgetConfig:
        if self.metric in MONEY_METRICS:
            if self.limit != self.limit.quantize(Decimal("1e-12")):
                raise ValueError("limit: a USD limit has at most 12 decimal places")
        elif self.limit != self.limit.to_integral_value():
            raise ValueError(f"limit: a {self.metric} limit is a whole number")
        return self

    def window_in(self, default_timezone: str) -> Window:
        """The parsed window, calendar windows in this budget's zone or ``default_timezone``."""
        return parse_window(self.window, load_zone(self.timezone or default_timezone))

    @property
    def wildcard_dimensions(self) -> tuple[str, ...]:
        """Dimensions with '*', in scope order: each distinct value tuple is one instance."""
        return tuple(dim for dim, term in self.scope.items() if term == WILDCARD)


class AlertsConfig(Section):
    """Threshold-crossing alerts: a JSON POST (with a Slack-compatible ``text``) per crossing."""

    webhook_url: str | None = Field(
        None, description="Where alerts are POSTed; none: alerts are only logged."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers, e.g. Authorization (kept secret)."
    )
    timeout: Duration = Field(timedelta(seconds=5), description="Per delivery attempt.")
    max_attempts: int = Field(8, ge=1, description="Attempts per alert before it is given up (logged).")
    initial_backoff: Duration = Field(timedelta(seconds=1), description="Wait before the 2nd attempt.")
    max_backoff: Duration = Field(timedelta(minutes=5), description="Backoff doubles up to this.")
    queue_size: int = Field(1000, ge=1, description="Alerts waiting for delivery; beyond it the oldest go.")

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class BudgetingConfig(Section):
    """The budget evaluator: time zone, dedup bounds, snapshot cadence, alerts."""

    timezone: str = Field("UTC", description="IANA zone of calendar windows (a budget may name its own).")
    alerts: AlertsConfig = AlertsConfig()
    dedup_horizon: Duration = Field(
        timedelta(minutes=15),
        description="A (trace_id, span_id) seen within this much receive time never counts twice.",
    )
    dedup_max_ids: int = Field(
        10_000_000, ge=1000, description="Bound of the dedup index (8 bytes each); oldest evicted first."
    )
    tick_interval: Duration = Field(
        timedelta(seconds=1), description="How often windows are rolled and rolling windows drained."
    )
    snapshot_refresh: Duration = Field(
        timedelta(seconds=5),
        description="Republish spend figures at least this often while spend changes (decisions "
        "themselves are published at once).",
    )

    store: str = Field(
        "memory",
        description="Where window totals live: memory (this process; the embedded default) or "
        "redis://[user:password@]host:port/db (rediss:// for TLS, unix:///path.sock?db=N): shared by "
        "every otelcost process that names the same Redis and store_prefix (docs/scale-out.md).",
    )
    store_prefix: str = Field(
        "otelcost",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix of every Redis key: deployments sharing one Redis keep apart by it.",
    )
    store_timeout: Duration = Field(
        timedelta(milliseconds=500),
        description="Per Redis command; a slower or failed one makes the decisions stale until "
        "Redis answers again.",
    )
    store_pending_batches: int = Field(
        100_000,
        ge=1,
        description="Batches counted locally while Redis is unreachable, kept to be added when it "
        "returns; beyond this the receivers refuse (retryable) instead of losing counts.",
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        load_zone(value)
        return value

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        value = value.strip()
        if value != "memory" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be memory or a redis://, rediss:// or unix:// URL")
        return value

    @property
    def shared(self) -> bool:
        """Whether window totals are shared through Redis."""
        return self.store != "memory"

    @property
    def store_display(self) -> str:
        """``store`` with any password in the URL masked: for logs, errors, ``config show``."""
        parts = urlsplit(self.store)
        if parts.password is None:
            return self.store
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @field_validator("tick_interval", "snapshot_refresh", "dedup_horizon", "store_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be greater than zero")
        return value

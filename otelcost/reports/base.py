"""What every report takes and gives: one request model, one result, one registry.

The three ways to run a report (``otelcost report NAME``, ``GET /v1/reports/NAME``, and
:func:`otelcost.reports.run_report` in Python) all build a :class:`ReportRequest`, call the same
function from :data:`REPORTS` and get a :class:`ReportResult`: named sections, each an Arrow
table whose money columns are DECIMAL(38, 12). Only the printing differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from otelcost.arrowjson import json_rows
from otelcost.budgets.config import WILDCARD, BudgetConfig
from otelcost.errors import ReportError, UnknownReportError
from otelcost.lake.query import LakeSession, run_query
from otelcost.policy.tenancy import OWN, TENANT_DIMENSION, tenant_term_kind
from otelcost.pricing.config import PricingConfig
from otelcost.reports.config import ReportsConfig
from otelcost.reports.dimensions import parse_dimensions
from otelcost.reports.period import Period, resolve_period

__all__ = [
    "REPORTS",
    "Report",
    "ReportContext",
    "ReportRequest",
    "ReportResult",
    "UnknownReportError",
    "register",
    "request_problem",
    "run_report",
]

DEFAULT_TIMEOUT_S: Final = 120.0


class ReportRequest(BaseModel):
    """The options of one report run; every surface builds one of these.

    ``period`` or ``since``/``until`` choose the period (default: the current month, cut at
    now); ``by`` the dimensions rows are grouped by; ``filters`` keep the calls whose dimension
    has the value; the rest are read only by the reports they name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str | None = None
    since: str | None = None
    until: str | None = None
    by: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    top: int = Field(10, ge=1, le=10_000, description="Rows of a top-N tail.")
    revenue_file: Path | None = Field(
        None, description="unit-economics: CSV of tenant_id, period, revenue_usd."
    )
    outcomes_file: Path | None = Field(None, description="unit-economics: CSV of feature, day, outcomes.")
    invoice_files: tuple[Path, ...] = Field(
        (), description="monthly: the provider's usage or cost exports to reconcile (docs/reconciliation.md)."
    )
    invoice_provider: str | None = Field(
        None, description="monthly: whose bill invoice_files are: openai, anthropic, bedrock, azure-openai."
    )
    max_cost_share: Decimal = Field(
        Decimal("0.3"),
        gt=0,
        description="unit-economics: flag tenants whose AI cost passes this share of revenue.",
    )

    sections: tuple[str, ...] = Field(
        (),
        description="Only these sections; empty: all. A report may skip the work of the others "
        "(unit-economics does); unknown names are an error.",
    )

    @field_validator("sections", mode="before")
    @classmethod
    def _parse_sections(cls, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            parts: list[object] = list(value.split(","))
        elif isinstance(value, list | tuple):
            parts = list(value)
        else:
            raise ValueError("expected section names")
        return tuple(dict.fromkeys(str(part).strip() for part in parts if str(part).strip()))

    def wants(self, section: str) -> bool:
        """Whether the caller asked for ``section`` (every section when none was named)."""
        return not self.sections or section in self.sections

    @field_validator("by", mode="before")
    @classmethod
    def _parse_by(cls, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str | list | tuple):
            return parse_dimensions(value)
        raise ValueError("expected dimension names")

    @field_validator("filters", mode="before")
    @classmethod
    def _parse_filters(cls, value: object) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        items: Iterable[object] = value.items() if isinstance(value, Mapping) else value  # type: ignore[assignment]
        out: list[tuple[str, str]] = []
        for item in items:
            if isinstance(item, str):
                name, sep, text = item.partition("=")
                if not sep:
                    raise ValueError(f"expected DIMENSION=VALUE, got {item!r}")
            elif isinstance(item, tuple | list) and len(item) == 2:
                name, text = str(item[0]), str(item[1])
            else:
                raise ValueError(f"expected DIMENSION=VALUE, got {item!r}")
            (canonical,) = parse_dimensions(name)
            out.append((canonical, text))
        return tuple(out)

    def resolved_period(self, now: datetime) -> Period:
        return resolve_period(self.period, self.since, self.until, now=now)


def request_problem(error: ValueError) -> str:
    """What is wrong with a request, in one line: ``by: unknown dimension 'colour' ...`` (the
    first problem pydantic found, or the message of another ValueError)."""
    errors = getattr(error, "errors", None)
    if callable(errors) and (problems := errors()):
        where = ".".join(str(part) for part in problems[0]["loc"])
        message = str(problems[0]["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(error)


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What a report may read besides its request: the lake, the configuration, the clock."""

    lake_dir: Path
    config: ReportsConfig = field(default_factory=ReportsConfig)
    budgets: Sequence[BudgetConfig] = ()
    pricing: PricingConfig | None = None
    statements_dir: Path | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    timeout: float | None = DEFAULT_TIMEOUT_S

    tenant: str | None = None
    """Set: the report is asked by a key bound to this tenant, and sees only its rows (the lake's
    views are narrowed, ``otelcost/lake/query.py``). Build such a context with :meth:`for_tenant`."""

    lake: LakeSession | None = field(default=None, compare=False, repr=False)
    """The connection the queries of one report run share (:func:`run_report` opens it)."""

    def for_tenant(self, tenant: str) -> ReportContext:
        """This context as one tenant may see it: the lake narrowed to its rows, only the budgets
        that are the tenant's own (scoped to ``tenant_id`` equal to it, or ``"*"``: one instance
        per tenant), no closed statements (they total every tenant)."""
        own = tuple(budget for budget in self.budgets if _tenant_budget(budget, tenant))
        return replace(self, tenant=tenant, budgets=own, statements_dir=None, lake=None)

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """Run ``sql`` over the lake's views (``llm_calls`` ...) with bound ``params``."""
        if self.lake is not None:
            return self.lake.query(sql, params)
        return run_query(self.lake_dir, sql, params, timeout=self.timeout, tenant=self.tenant)


def _tenant_budget(budget: BudgetConfig, tenant: str) -> bool:
    """Whether a budget's limit is the tenant's alone (a shared limit would tell others' spend)."""
    term = budget.scope.get(TENANT_DIMENSION)
    # "*": one instance per tenant, so the tenant's instance is its own.
    return term == WILDCARD or tenant_term_kind(term, tenant) == OWN


@dataclass(frozen=True, slots=True)
class ReportResult:
    """A report's answer: named sections (the first is the main one), and notes for the reader."""

    name: str
    period: Period
    sections: dict[str, pa.Table]
    notes: tuple[str, ...] = ()

    @property
    def table(self) -> pa.Table:
        """The main section."""
        return next(iter(self.sections.values()))

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``-f json`` and of the API: money as strings (otelcost.arrowjson)."""
        return {
            "report": self.name,
            "period": {
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "sections": {name: json_rows(table) for name, table in self.sections.items()},
            "notes": list(self.notes),
        }


Report = Callable[[ReportContext, ReportRequest], ReportResult]


@dataclass(frozen=True, slots=True)
class ReportSpec:
    name: str
    summary: str
    run: Report
    html: Callable[[ReportResult], str] | None = None
    """The report's own page for ``--format html`` (monthly); None: the generic page of tables."""


REPORTS: dict[str, ReportSpec] = {}
"""Report name -> its spec, in the order they were registered (``otelcost report --help``)."""


def register(
    name: str, summary: str, *, html: Callable[[ReportResult], str] | None = None
) -> Callable[[Report], Report]:
    """Decorator: make ``fn`` the report ``name`` (``html``: its own page, else a page of tables)."""

    def decorate(fn: Report) -> Report:
        REPORTS[name] = ReportSpec(name, summary, fn, html)
        return fn

    return decorate


def run_report(name: str, context: ReportContext, request: ReportRequest | None = None) -> ReportResult:
    """Run the report ``name``; UnknownReportError names the reports there are.

    With ``request.sections`` the result holds only those sections; a name the report does not
    have is a ReportError naming the ones it has.
    """
    spec = REPORTS.get(name)
    if spec is None:
        raise UnknownReportError(f"no report named {name!r}; the reports are: {', '.join(REPORTS)}")
    request = request or ReportRequest()
    if context.tenant is not None and request.invoice_files:
        raise ReportError("a tenant's report cannot reconcile invoices: a bill covers every tenant")
    if context.lake is None:  # one connection for every query of this run (and of the reports it composes)
        with LakeSession(context.lake_dir, timeout=context.timeout, tenant=context.tenant) as lake:
            result = spec.run(replace(context, lake=lake), request)
    else:
        result = spec.run(context, request)
    if not request.sections:
        return result
    unknown = [section for section in request.sections if section not in result.sections]
    if unknown:
        raise ReportError(
            f"{name} has no section {unknown[0]!r}; its sections are: {', '.join(result.sections)}"
        )
    kept = {section: result.sections[section] for section in request.sections}
    return ReportResult(result.name, result.period, kept, result.notes)

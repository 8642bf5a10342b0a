"""chargeback: showback plus the shared spend allocated to the receivers by configured rules.

Who receives the bill is ``reports.chargeback.charge_to`` (a dimension, default ``team``); what
is charged is ``reports.chargeback.cost`` (default ``effective_cost_usd``). One query
(:func:`chargeback_sql`) sums the period's calls by receiver and by *pool*: the first rule whose
``shared`` matches a call (``unattributed``: no receiver; ``where``: dimensions with given
values) takes the call out of its receiver's direct spend into that rule's pool. Rules with
``amount_per_month`` add a pool no call carries, prorated to the period (allocate.py). Each
pool is then split over its receivers in integer picodollars (allocate.split): ``evenly``, by
each receiver's ``direct_spend`` or direct ``tokens`` (input + output) in the period, or by
configured ``weights``. Receivers are ``weights``' keys, else ``among``, else every receiver
with a direct call in the period.

Sections:

``statement``
    One row per receiver and source: ``direct`` (its own calls, rule NULL), ``allocated``
    (its part of a rule's pool, with ``share`` of the pool and the ``rounding_pico`` the
    largest-remainder step gave it), ``unallocated`` (receiver NULL: a pool with no receivers,
    or calls with no receiver that no rule shares), so the rows always add up to what was
    spent plus the fixed amounts, to the picodollar.
``summary``
    Per receiver: direct calls, tokens and cost, allocated cost, total and share of the total.
``rules``
    Per rule, in order: what it shares, the pool, how it was spread, over how many receivers,
    and the remainder picodollars assigned by largest remainder.

A period that has a closed statement (statements.py) gets a note saying which version is
closed and whether the live numbers still equal it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import pyarrow as pa

from otelcost.errors import StatementError
from otelcost.money import format_amount, pico_to_decimal, usd_to_pico
from otelcost.reports.base import ReportContext, ReportRequest, ReportResult, register
from otelcost.reports.chargeback.allocate import month_overlaps, prorate_monthly, split
from otelcost.reports.chargeback.store import latest_statement, statement_csv
from otelcost.reports.config import AllocationRule, ChargebackConfig
from otelcost.reports.dimensions import DIMENSIONS, calls_where
from otelcost.reports.period import Period
from otelcost.schema import MONEY_TYPE

__all__ = [
    "RULES_SCHEMA",
    "STATEMENT_SCHEMA",
    "SUMMARY_SCHEMA",
    "Chargeback",
    "chargeback",
    "chargeback_sql",
    "compute_chargeback",
]

STATEMENT_SCHEMA: Final = pa.schema(
    [
        pa.field("receiver", pa.string()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("rule", pa.string()),
        pa.field("calls", pa.int64()),
        pa.field("tokens", pa.int64()),
        pa.field("cost_usd", MONEY_TYPE, nullable=False),
        pa.field("share", pa.float64()),
        pa.field("rounding_pico", pa.int64()),
    ]
)
"""``statement``: receiver x source. ``calls``/``tokens`` are the calls behind a direct or an
unallocated row (NULL on allocated rows: those calls are the pool's); ``share`` is the part of
the pool an allocated row got; ``rounding_pico`` the picodollar the remainder step added."""

SUMMARY_SCHEMA: Final = pa.schema(
    [
        pa.field("receiver", pa.string()),
        pa.field("direct_calls", pa.int64(), nullable=False),
        pa.field("direct_tokens", pa.int64(), nullable=False),
        pa.field("direct_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("allocated_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("unallocated_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("total_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("share", pa.float64()),
    ]
)

RULES_SCHEMA: Final = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("shared", pa.string(), nullable=False),
        pa.field("spread", pa.string(), nullable=False),
        pa.field("calls", pa.int64(), nullable=False),
        pa.field("tokens", pa.int64(), nullable=False),
        pa.field("pool_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("receivers", pa.int64(), nullable=False),
        pa.field("allocated_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("unallocated_cost_usd", MONEY_TYPE, nullable=False),
        pa.field("remainder_pico", pa.int64(), nullable=False),
        pa.field("note", pa.string(), nullable=False),
    ]
)


def _receiver_sql(config: ChargebackConfig) -> str:
    # An empty string is no receiver: a bill addressed to "" is unattributed spend.
    return f"nullif({DIMENSIONS[config.charge_to]}, '')"


def _rule_condition(index: int, rule: AllocationRule, receiver: str, params: dict[str, object]) -> str | None:
    if rule.shared.unattributed:
        return f"{receiver} IS NULL"
    if not rule.shared.where:
        return None  # a fixed amount: no call is in its pool
    parts = []
    for dim_index, (dimension, values) in enumerate(rule.shared.where.items()):
        names = []
        for value_index, value in enumerate(values):
            key = f"rule_{index}_{dim_index}_{value_index}"
            params[key] = value
            names.append(f"${key}")
        parts.append(f"{DIMENSIONS[dimension]} IN ({', '.join(names)})")
    return "(" + " AND ".join(parts) + ")"


def chargeback_sql(config: ChargebackConfig, where: str) -> tuple[str, dict[str, object]]:
    """The one query of chargeback: calls, tokens and cost by receiver and pool (the position
    of the first rule sharing the call, NULL for direct spend), and the rules' bound values.

    Only dimension names of the whitelist and the cost column of the validated config reach
    the text; every value a rule names is a parameter.
    """
    params: dict[str, object] = {}
    receiver = _receiver_sql(config)
    whens = []
    for index, rule in enumerate(config.rules):
        condition = _rule_condition(index, rule, receiver, params)
        if condition is not None:
            whens.append(f"WHEN {condition} THEN {index}")
    pool = f"CASE {' '.join(whens)} END" if whens else "NULL::INTEGER"
    sql = f"""
SELECT {receiver} AS receiver,
       {pool} AS pool,
       count(*) AS calls,
       coalesce(sum(input_tokens + output_tokens), 0)::BIGINT AS tokens,
       coalesce(sum({config.cost}), 0)::DECIMAL(38, 12) AS cost
FROM llm_calls
WHERE {where}
GROUP BY ALL
ORDER BY pool NULLS FIRST, receiver NULLS LAST
"""
    return sql, params


@dataclass(frozen=True, slots=True)
class Totals:
    """The period's amounts in picodollars; ``charged == spent + fixed`` always."""

    calls: int
    spent: int
    fixed: int
    direct: int
    allocated: int
    unallocated: int

    @property
    def charged(self) -> int:
        return self.direct + self.allocated + self.unallocated

    def as_json(self) -> dict[str, object]:
        def usd(pico: int) -> str:
            return format(pico_to_decimal(pico), "f")

        return {
            "calls": self.calls,
            "spent_usd": usd(self.spent),
            "fixed_usd": usd(self.fixed),
            "direct_usd": usd(self.direct),
            "allocated_usd": usd(self.allocated),
            "unallocated_usd": usd(self.unallocated),
            "charged_usd": usd(self.charged),
        }


@dataclass(frozen=True, slots=True)
class Chargeback:
    """A computed chargeback: its three sections, totals, and notes for the reader."""

    period: Period
    config: ChargebackConfig
    statement: pa.Table
    summary: pa.Table
    rules: pa.Table
    totals: Totals
    notes: tuple[str, ...]


@dataclass
class _Usage:
    calls: int = 0
    tokens: int = 0
    pico: int = 0

    def add(self, calls: int, tokens: int, pico: int) -> None:
        self.calls += calls
        self.tokens += tokens
        self.pico += pico


def _fee_text(rule: AllocationRule, period: Period) -> str:
    amount = rule.shared.amount_per_month
    assert amount is not None
    parts = []
    for first, covered in month_overlaps(period.start, period.end):
        following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        days = (following - first).days
        covered_days = covered * days
        if covered_days.denominator == 1:
            parts.append(f"{first:%Y-%m} {covered_days.numerator}/{days} days")
        else:
            parts.append(f"{first:%Y-%m} {float(covered_days):.6g}/{days} days")
    return f"amount_per_month {format_amount(amount)} USD x " + (", ".join(parts) or "no days")


def _shared_text(rule: AllocationRule, config: ChargebackConfig, period: Period) -> str:
    if rule.shared.unattributed:
        return f"unattributed (no {config.charge_to})"
    if rule.shared.where:
        return "where " + " and ".join(
            f"{dim} in [{', '.join(values)}]" for dim, values in rule.shared.where.items()
        )
    return _fee_text(rule, period)


def _weights(rule: AllocationRule, receivers: list[str], direct: Mapping[str, _Usage]) -> dict[str, Fraction]:
    if rule.spread == "weights":
        return {name: Fraction(weight) for name, weight in rule.weights.items()}
    names = rule.among or receivers
    if rule.spread == "evenly":
        return dict.fromkeys(names, Fraction(1))
    empty = _Usage()
    if rule.spread == "direct_spend":
        return {name: Fraction(max(direct.get(name, empty).pico, 0)) for name in names}
    return {name: Fraction(direct.get(name, empty).tokens) for name in names}


def _no_receivers_reason(rule: AllocationRule) -> str:
    if rule.spread == "direct_spend":
        return "no receiver has direct spend"
    if rule.spread == "tokens":
        return "no receiver has direct tokens"
    return "no receivers"


@dataclass(frozen=True, slots=True)
class _Line:
    """One row of the statement section (``pico`` is its cost)."""

    receiver: str | None
    kind: str
    pico: int
    rule: str | None = None
    calls: int | None = None
    tokens: int | None = None
    share: float | None = None
    rounding_pico: int | None = None


@dataclass(frozen=True, slots=True)
class _RuleLine:
    """One row of the rules section."""

    position: int
    rule: str
    shared: str
    spread: str
    calls: int
    tokens: int
    pool: int
    receivers: int
    allocated: int
    unallocated: int
    remainder_pico: int
    note: str


def _usd(pico: int) -> str:
    return format_amount(pico_to_decimal(pico))


def compute_chargeback(context: ReportContext, period: Period) -> Chargeback:
    """The chargeback of ``period`` (taken as given: the caller cuts it at now if it must)."""
    config = context.config.chargeback
    where, params = calls_where(period)
    sql, rule_params = chargeback_sql(config, where)
    grouped = context.query(sql, params | rule_params).to_pylist()

    direct: dict[str, _Usage] = defaultdict(_Usage)
    pools: dict[int, _Usage] = defaultdict(_Usage)
    unshared = _Usage()  # calls with no receiver that no rule takes
    calls = spent = 0
    for row in grouped:
        pico = usd_to_pico(row["cost"])
        calls += row["calls"]
        spent += pico
        if row["pool"] is not None:
            pools[row["pool"]].add(row["calls"], row["tokens"], pico)
        elif row["receiver"] is not None:
            direct[row["receiver"]].add(row["calls"], row["tokens"], pico)
        else:
            unshared.add(row["calls"], row["tokens"], pico)
    receivers = sorted(direct)

    by_receiver: dict[str, list[_Line]] = {
        name: [_Line(name, "direct", direct[name].pico, calls=direct[name].calls, tokens=direct[name].tokens)]
        for name in receivers
    }
    unallocated: list[_Line] = []
    if unshared.calls:
        unallocated.append(
            _Line(None, "unallocated", unshared.pico, calls=unshared.calls, tokens=unshared.tokens)
        )
    allocated: dict[str, int] = defaultdict(int)
    rules: list[_RuleLine] = []
    notes: list[str] = []
    fixed = 0
    for index, rule in enumerate(config.rules):
        pool = pools[index]
        if rule.shared.amount_per_month is not None:
            amount = usd_to_pico(rule.shared.amount_per_month)
            pool = _Usage(pico=prorate_monthly(amount, period.start, period.end))
            fixed += pool.pico
        shares = split(pool.pico, _weights(rule, receivers, direct))
        remainder = sum(share.rounding_pico for share in shares)
        if shares:
            note = f"{remainder} remainder picodollars went to the largest remainders" if remainder else ""
            for share in shares:
                allocated[share.receiver] += share.pico
                by_receiver.setdefault(share.receiver, []).append(
                    _Line(
                        share.receiver,
                        "allocated",
                        share.pico,
                        rule=rule.name,
                        share=round(float(share.share), 6),
                        rounding_pico=share.rounding_pico,
                    )
                )
        else:
            note = f"{_no_receivers_reason(rule)}: the pool stays unallocated"
            unallocated.append(
                _Line(None, "unallocated", pool.pico, rule=rule.name, calls=pool.calls, tokens=pool.tokens)
            )
            if pool.pico:
                notes.append(
                    f"rule {rule.name}: {_no_receivers_reason(rule)}; "
                    f"its {_usd(pool.pico)} USD stay unallocated"
                )
        rules.append(
            _RuleLine(
                position=index + 1,
                rule=rule.name,
                shared=_shared_text(rule, config, period),
                spread=rule.spread,
                calls=pool.calls,
                tokens=pool.tokens,
                pool=pool.pico,
                receivers=len(shares),
                allocated=pool.pico if shares else 0,
                unallocated=0 if shares else pool.pico,
                remainder_pico=remainder,
                note=note,
            )
        )

    lines = [line for name in sorted(by_receiver) for line in by_receiver[name]] + unallocated
    totals = Totals(
        calls=calls,
        spent=spent,
        fixed=fixed,
        direct=sum(usage.pico for usage in direct.values()),
        allocated=sum(allocated.values()),
        unallocated=sum(line.pico for line in unallocated),
    )
    if totals.charged != totals.spent + totals.fixed:  # pragma: no cover - split() conserves
        raise StatementError("chargeback does not conserve the spend; this is a bug")
    notes.insert(
        0,
        f"charged to {config.charge_to} at {config.cost}: spent {_usd(spent)} USD in {calls} calls "
        f"+ fixed amounts {_usd(fixed)} USD = {_usd(totals.charged)} USD (direct {_usd(totals.direct)}, "
        f"allocated {_usd(totals.allocated)}, unallocated {_usd(totals.unallocated)})",
    )
    return Chargeback(
        period=period,
        config=config,
        statement=_statement_table(lines),
        summary=_summary_table(direct, allocated, totals),
        rules=_rules_table(rules),
        totals=totals,
        notes=tuple(notes),
    )


def _money(values: list[int]) -> pa.Array:
    return pa.array([pico_to_decimal(value) for value in values], type=MONEY_TYPE)


def _statement_table(lines: list[_Line]) -> pa.Table:
    columns = {
        field.name: (
            _money([line.pico for line in lines])
            if field.name == "cost_usd"
            else pa.array([getattr(line, field.name) for line in lines], type=field.type)
        )
        for field in STATEMENT_SCHEMA
    }
    return pa.table(columns, schema=STATEMENT_SCHEMA)


def _summary_table(direct: Mapping[str, _Usage], allocated: Mapping[str, int], totals: Totals) -> pa.Table:
    names: list[str | None] = [*sorted(set(direct) | set(allocated))]
    if totals.unallocated:
        names.append(None)
    empty = _Usage()

    def total(name: str | None) -> int:
        if name is None:
            return totals.unallocated
        return direct.get(name, empty).pico + allocated.get(name, 0)

    names.sort(key=lambda name: (name is None, -total(name), name or ""))
    grand = totals.charged
    return pa.table(
        {
            "receiver": pa.array(names, type=pa.string()),
            "direct_calls": pa.array(
                [direct.get(n, empty).calls if n else 0 for n in names], type=pa.int64()
            ),
            "direct_tokens": pa.array(
                [direct.get(n, empty).tokens if n else 0 for n in names], type=pa.int64()
            ),
            "direct_cost_usd": _money([direct.get(n, empty).pico if n else 0 for n in names]),
            "allocated_cost_usd": _money([allocated.get(n, 0) if n else 0 for n in names]),
            "unallocated_cost_usd": _money([0 if n else totals.unallocated for n in names]),
            "total_cost_usd": _money([total(n) for n in names]),
            "share": pa.array(
                [round(total(n) / grand, 6) if grand else None for n in names], type=pa.float64()
            ),
        },
        schema=SUMMARY_SCHEMA,
    )


def _rules_table(lines: list[_RuleLine]) -> pa.Table:
    money = {
        "pool_cost_usd": "pool",
        "allocated_cost_usd": "allocated",
        "unallocated_cost_usd": "unallocated",
    }
    columns = {
        field.name: (
            _money([getattr(line, money[field.name]) for line in lines])
            if field.name in money
            else pa.array([getattr(line, field.name) for line in lines], type=field.type)
        )
        for field in RULES_SCHEMA
    }
    return pa.table(columns, schema=RULES_SCHEMA)


def _closed_note(context: ReportContext, period: Period, result: Chargeback) -> str | None:
    if context.statements_dir is None or period.unit == "span" or result.period != period:
        return None
    try:
        closed = latest_statement(context.statements_dir, period.label)
    except StatementError as exc:
        return f"the closed statement of {period.label} cannot be read: {exc}"
    if closed is None:
        return None
    info = closed.info
    if closed.csv == statement_csv(result.statement):
        state = "the live numbers still equal it"
    else:
        live = pico_to_decimal(result.totals.charged)
        state = (
            f"the live numbers differ from it (now {format_amount(live)} USD, closed "
            f"{format_amount(info.charged_usd)} USD): closing again writes v{info.version + 1}"
        )
    return f"{period.label} is closed: statement v{info.version} of {info.created_at.isoformat()}; {state}"


@register("chargeback", "Who pays what: each receiver's spend plus shared spend allocated by rules.")
def chargeback(context: ReportContext, request: ReportRequest) -> ReportResult:
    """The chargeback of ``request``'s period: sections ``statement``, ``summary``, ``rules``.

    The receiver is ``reports.chargeback.charge_to``, so ``by`` is refused, and a bill covers
    every call of the period, so ``filters`` are too (ValueError).
    """
    if request.by:
        raise ValueError("chargeback bills by reports.chargeback.charge_to; it takes no --by")
    if request.filters:
        raise ValueError("chargeback bills every call of the period; it takes no --filter")
    now = context.now()
    period = request.resolved_period(now)
    cut = period.cut(now)
    result = compute_chargeback(context, cut)
    notes = list(result.notes)
    if cut.end < period.end and any(rule.shared.amount_per_month is not None for rule in result.config.rules):
        notes.append(f"{period.label} has not ended: monthly amounts are prorated to {cut.end.isoformat()}")
    closed = _closed_note(context, period, result)
    if closed is not None:
        notes.append(closed)
    sections = {"statement": result.statement, "summary": result.summary, "rules": result.rules}
    return ReportResult("chargeback", cut, sections, tuple(notes))

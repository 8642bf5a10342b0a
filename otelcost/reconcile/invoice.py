"""The normalized invoice: what a provider billed, as (day, model name, token class) lines.

Every provider parser (``openai.py``, ``anthropic.py``, ``bedrock.py``, ``azure.py``) turns its
export into :class:`InvoiceLine` values: the UTC day the usage happened, the model as the bill
spells it, the token class, the tokens (``None`` when the export gives only dollars) and the
amount in integer picodollars (``None`` when it gives only tokens, as usage exports do). Lines
of one cell are added up later (``compare.py``); a usage export and a cost export of the same
provider can be given together and complete each other.

Token classes are the lake's (docs/pricing.md, "Token semantics"): ``input`` (uncached input),
``cache_read``, ``cache_write`` (5-minute and 1-hour writes together) and ``output``. None of
the four providers' exports bills reasoning apart from output, so reasoning tokens are counted
in ``output`` on both sides. Charges that are not tokens (web search calls, code execution,
storage) are class ``other``: the lake records no such usage, so they are always unexplained.

The helpers at the bottom read the values every export shares (exact decimals, whole token
counts written as ``59200.0``, RFC 3339 or Unix times) and raise :class:`InvoiceFormatError`
naming the file and the place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from otelcost.money import PICO_PER_USD
from otelcost.reconcile.errors import InvoiceFormatError

__all__ = [
    "OTHER",
    "TOKEN_CLASSES",
    "CsvRow",
    "InvoiceLine",
    "ParsedFile",
    "parse_day",
    "parse_tokens",
    "parse_usd",
    "read_csv",
    "usd_to_pico_rounded",
]

TOKEN_CLASSES: Final = ("input", "cache_read", "cache_write", "output")
"""The token classes compared, in display order."""

OTHER: Final = "other"
"""The class of a billed charge that is not tokens (web search, code execution, storage)."""


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One billed amount or usage of one day, model and token class, and where it was read."""

    day: date
    model: str
    token_class: str
    tokens: int | None
    pico: int | None
    source: str
    """``file:line`` (CSV) or ``file:json.path`` (JSON) of the row it came from."""
    host_global: bool = False
    """Bedrock only: billed at the global cross-region rate (``..._Global-Units``)."""


@dataclass(slots=True)
class ParsedFile:
    """What a parser read from one file: the lines, and what it left out (reason -> rows, USD)."""

    lines: list[InvoiceLine] = field(default_factory=list)
    skipped: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    def skip(self, reason: str, cost: Decimal) -> None:
        count, total = self.skipped.get(reason, (0, Decimal(0)))
        self.skipped[reason] = (count + 1, total + cost)


def usd_to_pico_rounded(amount: Decimal) -> int:
    """USD as picodollars, rounded half to even where the export is finer than 1e-12."""
    return int((amount * PICO_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def parse_usd(text: object, path: Path, where: str) -> Decimal:
    """An exact decimal amount from a JSON number (read as Decimal) or a string."""
    if isinstance(text, bool) or text is None:
        raise InvoiceFormatError(path, where, f"expected an amount, got {text!r}")
    try:
        value = Decimal(str(text).strip().replace(",", "")) if not isinstance(text, Decimal) else text
    except InvalidOperation:
        raise InvoiceFormatError(path, where, f"expected an amount, got {text!r}") from None
    if not value.is_finite():
        raise InvoiceFormatError(path, where, f"expected a finite amount, got {text!r}")
    return value


def parse_tokens(text: object, path: Path, where: str) -> int:
    """A whole, non-negative token count; ``59200.0`` (how dashboards write counts) is 59200."""
    if text is None or text == "":
        return 0
    if isinstance(text, bool):
        raise InvoiceFormatError(path, where, f"expected a token count, got {text!r}")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvoiceFormatError(path, where, f"expected a token count, got {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise InvoiceFormatError(path, where, f"expected a whole, non-negative token count, got {text!r}")
    return int(value)


def parse_day(text: object, path: Path, where: str) -> date:
    """The UTC day of a Unix time in seconds, an RFC 3339 timestamp or a ``YYYY-MM-DD`` date.

    Accepted as well: ``MM/DD/YYYY`` (Azure's cost exports write dates that way).
    """
    if isinstance(text, int | Decimal) and not isinstance(text, bool):
        return datetime.fromtimestamp(int(text), UTC).date()
    value = str(text).strip() if text is not None else ""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).date()
    if len(value) == 10 and value[2] == "/" and value[5] == "/":
        try:
            return date(int(value[6:]), int(value[:2]), int(value[3:5]))
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvoiceFormatError(
            path, where, f"expected a date or an RFC 3339 / Unix time, got {text!r}"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row of a CSV export: its 1-based line number and its cells by column name."""

    line: int
    cells: dict[str, str]
    path: Path

    def where(self, column: str) -> str:
        return f"line {self.line}, column {column}"

    def get(self, *names: str) -> str | None:
        """The first of ``names`` the file has (exports spell columns differently), else None."""
        for name in names:
            if name in self.cells:
                return self.cells[name]
        return None

    def column(self, *names: str) -> str:
        """The name of the first of ``names`` the file has (for error messages)."""
        return next((name for name in names if name in self.cells), names[0])


def read_csv(path: Path, text: str, required: Sequence[Sequence[str]]) -> Iterator[CsvRow]:
    """The rows of a CSV (comma or tab separated, BOM tolerated) whose header has, for each
    group of ``required``, one of the spellings; a missing column is an error naming them."""
    body = text.lstrip("\ufeff")
    first = body.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise InvoiceFormatError(path, "", "the file is empty") from None
    for group in required:
        if not any(name in header for name in group):
            raise InvoiceFormatError(
                path, "line 1", f"no column {' or '.join(group)} in the header; it has: {', '.join(header)}"
            )
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvoiceFormatError(
                path, f"line {line}", f"{len(row)} fields where the header has {len(header)}"
            )
        yield CsvRow(line, dict(zip(header, (cell.strip() for cell in row), strict=True)), path)

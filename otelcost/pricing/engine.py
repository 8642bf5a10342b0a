"""The pricing stage: a batch of calls (``CALL_SCHEMA``) in, priced records (``RECORD_SCHEMA``) out.

Everything is vectorised over the batch; Python loops run over *distinct keys*, never rows:

1. **Resolve.** ``provider``, ``response_model`` and ``request_model`` are dictionary-encoded
   and combined into one integer key per row; each distinct key is resolved against the catalog
   once and remembered (the response model, the dated snapshot, is tried first, then the
   request model).
2. **Pick the version in force.** All versions of all entries sit in one sorted array of
   ``entry << 34 | effective_from`` (seconds); one ``numpy.searchsorted`` of
   ``entry << 34 | ts`` finds each row's version, then ``effective_to`` is checked.
3. **Pick the rates.** (version, service tier) selects a price set — a tier the version does
   not price falls back to standard — and its variant (long-context level or time-of-day
   window) is computed per distinct price set with numpy masks. Each row ends with one index
   into a matrix of int64 rates (picodollars per token, six classes).
4. **Multiply** (:mod:`otelcost.pricing.costs`). int64 tokens x int64 rates, per class;
   ``cost_usd`` is the exact sum of the five parts. A batch whose costs could pass 2**63
   picodollars (9.2 million USD in one call: corrupt token counts) is recomputed with Python
   integers rather than wrapped around.
5. **Discount** (``effective_cost_usd``), half-to-even at the picodollar, then wrap the int64
   picodollars as ``DECIMAL(38, 12)`` without any arithmetic.

Token semantics are the lake's: ``input_tokens`` includes cache reads and writes, so uncached
input is ``input - cache_read - cache_write`` (never below zero); ``output_tokens`` includes
reasoning, so non-reasoning output is ``output - reasoning``. Cache writes are priced at the
default (5-minute) write rate, except the part a span reports in the attribute
``otelcost.cache_write_1h_tokens``, priced at the 1-hour rate. A call whose model no entry
prices keeps its tokens with cost 0 and ``pricing_status = 'unknown_model'`` (``'no_model'``
when it names no model at all); nothing is ever dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from otelcost.pricing.catalog import Catalog
from otelcost.pricing.config import PricingConfig
from otelcost.pricing.costs import costs, int64_column, money_array
from otelcost.pricing.discounts import DiscountRule, apply_fraction, rules_for
from otelcost.pricing.entries import Entry
from otelcost.pricing.rates import SERVICE_TIERS, PriceSet
from otelcost.schema import CALL_SCHEMA, RECORD_SCHEMA

__all__ = ["PRICING_STATUSES", "Pricer", "PricingCounters"]

PRICING_STATUSES: Final = ("priced", "unknown_model", "no_model")

_PRICED, _UNKNOWN, _NO_MODEL = 0, 1, 2
_TIER_CODES: Final = {name: code for code, name in enumerate(SERVICE_TIERS)}
_SHIFT: Final = 34  # seconds since 1970 below 2**34 (year 2514) leave 29 bits for the entry
_MAX_SECOND: Final = (1 << _SHIFT) - 1
_US_PER_SECOND: Final = 1_000_000
_SECONDS_PER_DAY: Final = 86_400
_EPOCH_ISO_WEEKDAY: Final = 4  # 1970-01-01 was a Thursday
_NO_KEY: Final = -1


@dataclass
class PricingCounters:
    """Running totals of what the pricer has seen, for the metrics endpoint."""

    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRICING_STATUSES, 0))

    def copy(self) -> PricingCounters:
        return PricingCounters(self.rows, self.batches, self.seconds, dict(self.by_status))


@dataclass(frozen=True, slots=True)
class _Group:
    """One (version, applied tier) price set: where its rate rows start and how variants pick."""

    first_rate_row: int
    prices: PriceSet


@dataclass(frozen=True, slots=True)
class _Resolved:
    entry: int  # index into catalog.entries, or -1
    status_if_unpriced: int  # _UNKNOWN or _NO_MODEL
    discounts: tuple[DiscountRule, ...]


class Pricer:
    """Prices batches of calls against a :class:`Catalog` (thread-safe; keep one per pipeline)."""

    def __init__(self, catalog: Catalog, config: PricingConfig) -> None:
        self.catalog = catalog
        self.config = config
        self._lock = threading.Lock()
        self._counters = PricingCounters()
        self._resolved: dict[tuple[str | None, str | None, str | None], _Resolved] = {}
        self._build_tables()

    # -- tables built once from the catalog ------------------------------------------------------

    def _build_tables(self) -> None:
        version_keys: list[int] = []
        version_ends: list[int] = []
        version_entry: list[int] = []
        groups: list[_Group] = []
        group_of: list[int] = []  # (version * 4 + tier code) -> group
        rates: list[tuple[int, ...]] = []
        refs: list[str] = []
        for entry_index, entry in enumerate(self.catalog.entries):
            for version in entry.versions:
                start = 0 if version.effective_from is None else int(version.effective_from.timestamp())
                end = _MAX_SECOND if version.effective_to is None else int(version.effective_to.timestamp())
                version_keys.append((entry_index << _SHIFT) | min(max(start, 0), _MAX_SECOND))
                version_ends.append(min(max(end, 0), _MAX_SECOND))
                version_entry.append(entry_index)
                by_tier: dict[str, int] = {}
                for tier in SERVICE_TIERS:
                    applied, prices = version.price_set(tier)
                    if applied not in by_tier:
                        by_tier[applied] = len(groups)
                        groups.append(_Group(len(rates), prices))
                        for variant, variant_rates in prices.variants():
                            rates.append(variant_rates.vector)
                            refs.append(entry.price_ref(version, applied, variant))
                    group_of.append(by_tier[applied])
        rates.append((0,) * 6)  # the rate row of unpriced calls
        self._version_keys = np.asarray(version_keys, dtype=np.int64)
        self._version_ends = np.asarray(version_ends, dtype=np.int64)
        self._version_entry = np.asarray(version_entry, dtype=np.int64)
        self._group_of = np.asarray(group_of, dtype=np.int64)
        self._groups = groups
        self._group_first = np.asarray([g.first_rate_row for g in groups], dtype=np.int64)
        self._rates = np.asarray(rates, dtype=np.int64)
        self._refs = pa.array([*refs, None], type=pa.string())
        self._model_ids = pa.array([*(e.id for e in self.catalog.entries), None], type=pa.string())
        self._statuses = pa.array(PRICING_STATUSES, type=pa.string())
        self._entry_index = {id(e): i for i, e in enumerate(self.catalog.entries)}

    # -- public ----------------------------------------------------------------------------------

    @property
    def counters(self) -> PricingCounters:
        with self._lock:
            return self._counters.copy()

    def price(self, calls: pa.Table) -> pa.Table:
        """Add the pricing columns to ``calls`` (CALL_SCHEMA); returns exactly RECORD_SCHEMA."""
        started = time.perf_counter()
        # ``column_names`` builds a new list on every access: read it once (it was once per name).
        present = set(calls.column_names)
        missing = [name for name in CALL_SCHEMA.names if name not in present]
        if missing:
            raise TypeError(f"price() needs a CALL_SCHEMA table; missing columns: {missing}")
        n = calls.num_rows
        if n:
            columns, statuses = self._price_columns(calls)
        else:
            columns, statuses = _empty_pricing_columns(), np.zeros(0, dtype=np.int64)
        arrays = [columns[f.name] if f.name in columns else calls[f.name] for f in RECORD_SCHEMA]
        table = pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)
        if n:
            counts = np.bincount(statuses, minlength=3)
            elapsed = time.perf_counter() - started
            with self._lock:
                c = self._counters
                c.rows += n
                c.batches += 1
                c.seconds += elapsed
                for code, name in enumerate(PRICING_STATUSES):
                    c.by_status[name] += int(counts[code])
        return table

    # -- the vectorised path -----------------------------------------------------------------------

    def _price_columns(self, calls: pa.Table) -> tuple[dict[str, pa.Array], npt.NDArray[np.int64]]:
        n = calls.num_rows
        key_of_row, resolved = self._resolve_rows(calls)
        entry = np.array([r.entry for r in resolved], dtype=np.int64)[key_of_row]
        unpriced_status = np.array([r.status_if_unpriced for r in resolved], dtype=np.int64)[key_of_row]

        ts_us = int64_column(calls["ts"])
        seconds = np.clip(np.floor_divide(ts_us, _US_PER_SECOND), 0, _MAX_SECOND)
        version, in_force = self._versions(entry, seconds)
        status = np.where(in_force, _PRICED, unpriced_status)

        tier = self._tier_codes(calls["service_tier"])
        input_tokens = np.maximum(int64_column(calls["input_tokens"]), 0)
        group = np.where(in_force, self._group_of[np.where(in_force, version, 0) * 4 + tier], -1)
        rate_row = self._rate_rows(group, input_tokens, ts_us, seconds)

        rates = self._rates[rate_row]
        money = costs(calls, input_tokens, rates)
        effective = self._discounted(money["cost_usd"], key_of_row, resolved, ts_us, status)

        result: dict[str, pa.Array] = {
            "model": self._model_ids.take(pa.array(np.where(in_force, entry, len(self.catalog.entries)))),
            "price_ref": self._refs.take(pa.array(rate_row)),
            "pricing_status": self._statuses.take(pa.array(status)),
            "effective_cost_usd": money_array(effective),
        }
        for name, values in money.items():
            result[name] = money_array(values)
        assert all(len(a) == n for a in result.values())
        return result, status

    def _resolve_rows(self, calls: pa.Table) -> tuple[npt.NDArray[np.int64], list[_Resolved]]:
        """One integer key per row for its (provider, response_model, request_model), resolved once."""
        codes, dictionaries = [], []
        for name in ("provider", "response_model", "request_model"):
            encoded = _dictionary(calls[name])
            codes.append(encoded[0])
            dictionaries.append(encoded[1])
        sizes = [len(d) + 1 for d in dictionaries]
        combined = (codes[0] * sizes[1] + codes[1]) * sizes[2] + codes[2]
        unique, key_of_row = np.unique(combined, return_inverse=True)
        resolved = []
        for value in unique.tolist():
            rest, request_code = divmod(value, sizes[2])
            provider_code, response_code = divmod(rest, sizes[1])
            key = (
                _lookup(dictionaries[0], provider_code),
                _lookup(dictionaries[1], response_code),
                _lookup(dictionaries[2], request_code),
            )
            resolved.append(self._resolve(key))
        return key_of_row.astype(np.int64).reshape(-1), resolved

    def _resolve(self, key: tuple[str | None, str | None, str | None]) -> _Resolved:
        found = self._resolved.get(key)
        if found is not None:
            return found
        provider, response_model, request_model = key
        entry: Entry | None = None
        for name in (response_model, request_model):
            if name:
                entry = self.catalog.resolve(provider, name)
                if entry is not None:
                    break
        if entry is None:
            has_name = bool(response_model or request_model)
            found = _Resolved(-1, _UNKNOWN if has_name else _NO_MODEL, ())
        else:
            index = self._entry_index[id(entry)]
            discounts = rules_for(self.config.discounts, provider, entry.id)
            found = _Resolved(index, _UNKNOWN, discounts)
        with self._lock:
            if len(self._resolved) > 100_000:  # distinct names are few; this only bounds abuse
                self._resolved.clear()
            self._resolved[key] = found
        return found

    def _versions(
        self, entry: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        if len(self._version_keys) == 0:
            return np.zeros_like(entry), np.zeros(len(entry), dtype=bool)
        safe_entry = np.maximum(entry, 0)
        row_keys = (safe_entry << _SHIFT) | seconds
        version = np.searchsorted(self._version_keys, row_keys, side="right") - 1
        clipped = np.maximum(version, 0)
        in_force = (
            (entry >= 0)
            & (version >= 0)
            & (self._version_entry[clipped] == entry)
            & (seconds < self._version_ends[clipped])
        )
        return clipped, in_force

    @staticmethod
    def _tier_codes(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
        values, dictionary = _dictionary(column)
        mapping = np.array(
            [*(_TIER_CODES.get(str(v).strip().lower(), 0) for v in dictionary.to_pylist()), 0], dtype=np.int64
        )
        return mapping[values]

    def _rate_rows(
        self,
        group: npt.NDArray[np.int64],
        input_tokens: npt.NDArray[np.int64],
        ts_us: npt.NDArray[np.int64],
        seconds: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        unpriced_row = len(self._rates) - 1
        safe_group = np.maximum(group, 0)
        rate_row = np.where(group >= 0, self._group_first[safe_group], unpriced_row)
        for g in np.unique(group[group >= 0]).tolist():
            prices = self._groups[g].prices
            if not (prices.long_context or prices.time_of_day):
                continue
            rows = np.flatnonzero(group == g)
            variant = np.zeros(len(rows), dtype=np.int64)
            if prices.long_context:
                tokens = input_tokens[rows]
                for level, lc in enumerate(prices.long_context, start=1):
                    crossed = tokens >= lc.threshold if lc.inclusive else tokens > lc.threshold
                    variant[crossed] = level  # thresholds ascend: the highest crossed wins
            else:
                second_of_day = seconds[rows] % _SECONDS_PER_DAY
                weekday = (seconds[rows] // _SECONDS_PER_DAY + _EPOCH_ISO_WEEKDAY - 1) % 7 + 1
                undecided = np.ones(len(rows), dtype=bool)
                for index, window in enumerate(prices.time_of_day, start=1):
                    inside = np.isin(weekday, list(window.weekdays))
                    in_range = np.zeros(len(rows), dtype=bool)
                    for start, end in window.ranges:
                        if start < end:
                            in_range |= (second_of_day >= start) & (second_of_day < end)
                        else:
                            in_range |= (second_of_day >= start) | (second_of_day < end)
                    hit = undecided & inside & in_range
                    variant[hit] = index
                    undecided &= ~hit
            rate_row[rows] += variant
        return rate_row

    def _discounted(
        self,
        cost: npt.NDArray[np.int64] | npt.NDArray[np.object_],
        key_of_row: npt.NDArray[np.int64],
        resolved: Sequence[_Resolved],
        ts_us: npt.NDArray[np.int64],
        status: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64] | npt.NDArray[np.object_]:
        keep = np.ones(len(cost), dtype=np.int64)
        scale = np.ones(len(cost), dtype=np.int64)
        for key_index, item in enumerate(resolved):
            if not item.discounts:
                continue
            rows = np.flatnonzero((key_of_row == key_index) & (status == _PRICED))
            undecided = np.ones(len(rows), dtype=bool)
            for rule in item.discounts:
                hit = undecided & (ts_us[rows] >= rule.start_us) & (ts_us[rows] < rule.end_us)
                keep[rows[hit]] = rule.keep
                scale[rows[hit]] = rule.scale
                undecided &= ~hit
        if cost.dtype == object:
            return apply_fraction(cost, keep.astype(object), scale.astype(object))
        return apply_fraction(cost, keep, scale)


# -- helpers -----------------------------------------------------------------------------------------


def _dictionary(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], pa.Array]:
    """Indices (nulls and empty strings -> len(dictionary)) and the dictionary of a string column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    encoded = array.dictionary_encode()
    dictionary = encoded.dictionary
    indices = encoded.indices
    missing = len(dictionary)
    codes = np.asarray(pc.fill_null(indices, missing).to_numpy(zero_copy_only=False), dtype=np.int64)
    empty = [i for i, value in enumerate(dictionary.to_pylist()) if value is None or not str(value).strip()]
    if empty:
        codes[np.isin(codes, empty)] = missing
    return codes, dictionary


def _lookup(dictionary: pa.Array, code: int) -> str | None:
    if code >= len(dictionary):
        return None
    value = dictionary[code].as_py()
    return str(value) if value is not None else None


def _empty_pricing_columns() -> dict[str, pa.Array]:
    return {f.name: pa.array([], type=f.type) for f in RECORD_SCHEMA if f.name not in CALL_SCHEMA.names}

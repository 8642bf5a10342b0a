"""``otelcost pricing ...`` and ``otelcost reprice``: the price catalog from the command line.

* ``pricing lookup MODEL`` — which entry, version and rates would price a call.
* ``pricing list`` — the entries of the catalog.
* ``pricing check [FILE...]`` — validate the shipped and configured catalogs (and FILEs).
* ``pricing unknown`` — models in the lake that no entry priced, with their token volumes.
* ``pricing import-litellm FILE`` — convert LiteLLM's price map into a catalog file.
* ``reprice --since DATE`` — recompute the cost columns of the lake after a catalog change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

import click
import pyarrow as pa

from otelcost.cli.common import (
    config_options,
    load_cli_config,
    otelcost_errors,
    parse_day,
    partition_rewrite_options,
)
from otelcost.cli.output import emit, output_options
from otelcost.jobs.reprice import PartitionResult, reprice, unknown_models
from otelcost.pricing import Catalog, Pricer, PricingConfig, check
from otelcost.pricing.entries import Entry, Version
from otelcost.pricing.litellm import DEFAULT_MODES, convert_file_text
from otelcost.pricing.rates import RATE_CLASSES, SERVICE_TIERS

__all__ = ["COMMANDS", "pricing", "reprice_command"]

_RATE_TYPE: Final = pa.decimal128(20, 6)


def _moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"expected a date or ISO date-time, got {value!r}", param_hint="--at"
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pricing_config(config_path: Path | None, data_dir: Path | None) -> tuple[PricingConfig, Path]:
    config = load_cli_config(config_path, data_dir)
    with otelcost_errors():  # an s3:// lake.root: not for these commands yet
        return config.pricing, config.lake_dir


@click.group("pricing")
def pricing() -> None:
    """Inspect, check and extend the price catalog."""


@pricing.command("lookup")
@config_options
@click.option("--provider", help="gen_ai.provider.name of the call (openai, aws.bedrock ...).")
@click.option("--at", "at", metavar="DATE", help="When the call happened (default: now), UTC.")
@output_options
@click.argument("model")
def lookup(
    *,
    model: str,
    provider: str | None,
    at: str | None,
    config_path: Path | None,
    data_dir: Path | None,
    fmt: str,
) -> None:
    """Show the catalog entry, version and rates (USD per 1M tokens) that price MODEL.

    One row per service tier and variant (long-context level, time-of-day window). A tier the
    version does not price falls back to standard.
    """
    pricing_config, _ = _pricing_config(config_path, data_dir)
    with otelcost_errors():
        catalog = Catalog.load(pricing_config)
    entry = catalog.resolve(provider, model)
    if entry is None:
        where = f" for provider {provider}" if provider else " (no provider: first-party catalogs only)"
        raise click.ClickException(f"no catalog entry prices {model!r}{where}")
    when = _moment(at)
    version = entry.version_at(when)
    if version is None:
        spans = ", ".join(
            f"{v.label}..{v.effective_to.date() if v.effective_to else ''}" for v in entry.versions
        )
        raise click.ClickException(
            f"{entry.key} has no price in force at {when.isoformat()} (versions: {spans})"
        )
    emit(_rate_table(entry, version), fmt)


def _rate_table(entry: Entry, version: Version) -> pa.Table:
    rows: dict[str, list[object]] = {"price_ref": [], "tier": [], "applies_when": []}
    for name in RATE_CLASSES:
        rows[name] = []
    rows["source"] = []
    seen: set[str] = set()
    for tier in SERVICE_TIERS:
        applied, prices = version.price_set(tier)
        if applied in seen:
            continue
        seen.add(applied)
        for variant, rates in prices.variants():
            rows["price_ref"].append(entry.price_ref(version, applied, variant))
            rows["tier"].append(applied)
            rows["applies_when"].append(_describe_variant(prices, variant))
            for name, value in rates.per_million().items():
                rows[name].append(value)
            rows["source"].append(version.source.describe() if version.source else None)
    columns = {
        name: pa.array(values, type=_RATE_TYPE if name in RATE_CLASSES else pa.string())
        for name, values in rows.items()
    }
    return pa.table(columns)


def _describe_variant(prices: object, variant: str | None) -> str:
    if variant is None:
        return (
            "always"
            if not (getattr(prices, "long_context", ()) or getattr(prices, "time_of_day", ()))
            else "otherwise"
        )
    if variant.startswith("long>="):
        return f"input tokens >= {variant[6:]}"
    if variant.startswith("long>"):
        return f"input tokens > {variant[5:]}"
    for window in getattr(prices, "time_of_day", ()):
        if window.name == variant:
            ranges = ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in window.ranges)
            days = "" if len(window.weekdays) == 7 else f" on ISO weekdays {sorted(window.weekdays)}"
            return f"{variant}: {ranges} UTC{days}"
    return variant


def _clock(second: int) -> str:
    return f"{second // 3600:02d}:{second % 3600 // 60:02d}"


@pricing.command("list")
@config_options
@click.option("--provider", help="Only this provider's entries.")
@output_options
def list_entries(*, provider: str | None, config_path: Path | None, data_dir: Path | None, fmt: str) -> None:
    """List catalog entries with the rates in force now (USD per 1M tokens)."""
    pricing_config, _ = _pricing_config(config_path, data_dir)
    with otelcost_errors():
        catalog = Catalog.load(pricing_config)
    now = datetime.now(UTC)
    rows: dict[str, list[object]] = {
        "provider": [],
        "id": [],
        "kind": [],
        "catalog": [],
        "versions": [],
        "input": [],
        "output": [],
        "names": [],
    }
    for entry in sorted(catalog.entries, key=lambda e: (e.provider, e.id)):
        if provider and provider.lower() not in entry.providers:
            continue
        version = entry.version_at(now)
        rates = version.prices.base.per_million() if version else None
        rows["provider"].append(entry.provider)
        rows["id"].append(entry.id)
        rows["kind"].append(entry.kind)
        rows["catalog"].append(entry.catalog or "shipped")
        rows["versions"].append(len(entry.versions))
        rows["input"].append(rates["input"] if rates else None)
        rows["output"].append(rates["output"] if rates else None)
        rows["names"].append(", ".join((*entry.aliases, *entry.patterns)) or None)
    types = {"versions": pa.int64(), "input": _RATE_TYPE, "output": _RATE_TYPE}
    emit(pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in rows.items()}), fmt)


@pricing.command("check")
@config_options
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
def check_command(*, files: tuple[Path, ...], config_path: Path | None, data_dir: Path | None) -> None:
    """Validate the shipped catalog, the configured user catalogs and FILES.

    Reports overlapping or disordered effective dates, duplicate entries, aliases and patterns,
    negative, missing or malformed prices and unknown keys, each with its file and entry.
    Exits 1 if there is any error.
    """
    pricing_config, _ = _pricing_config(config_path, data_dir)
    catalog, issues = check(pricing_config, list(files))
    for issue in issues:
        click.echo(f"{issue.severity}: {issue}", err=issue.severity == "error")
    errors = sum(1 for issue in issues if issue.severity == "error")
    warnings = len(issues) - errors
    versions = sum(len(e.versions) for e in catalog.entries)
    click.echo(f"{len(catalog.entries)} entries, {versions} versions: {errors} errors, {warnings} warnings")
    if errors:
        raise SystemExit(1)


@pricing.command("unknown")
@config_options
@click.option("--since", metavar="DATE", help="Only calls from this day (UTC) on.")
@click.option("--until", metavar="DATE", help="Only calls before this day (UTC).")
@output_options
def unknown(
    *, since: str | None, until: str | None, config_path: Path | None, data_dir: Path | None, fmt: str
) -> None:
    """List models seen in the lake that no catalog entry priced, with their token volumes.

    priced_now_as names the entry the current catalog would use (then run `otelcost reprice`).
    """
    pricing_config, lake_dir = _pricing_config(config_path, data_dir)
    with otelcost_errors():
        catalog = Catalog.load(pricing_config)
        table = unknown_models(
            lake_dir, since=parse_day(since, "--since"), until=parse_day(until, "--until"), catalog=catalog
        )
    emit(table, fmt)


@pricing.command("import-litellm")
@click.argument("source", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Catalog file to write (add it to pricing.catalogs).",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    default=DEFAULT_MODES,
    show_default=True,
    help="LiteLLM modes to import (repeatable).",
)
@click.option(
    "--include-shipped",
    is_flag=True,
    help="Also import models the shipped catalog already prices (they would override it).",
)
@click.option(
    "--read", "read", metavar="DATE", help="When the file was downloaded (source.read); default today."
)
def import_litellm(
    *, source: Path, output: Path, modes: tuple[str, ...], include_shipped: bool, read: str | None
) -> None:
    """Convert LiteLLM's model_prices_and_context_window.json (FILE) into a catalog file.

    Token prices, cache reads and writes, reasoning, long-context thresholds and the batch,
    flex and priority tiers are converted exactly; see docs/pricing.md for the field mapping.
    """
    skip = None
    with otelcost_errors():
        if not include_shipped:
            skip = Catalog.load(PricingConfig())
        text, report = convert_file_text(
            source.read_text(encoding="utf-8"),
            modes=modes,
            read=parse_day(read, "--read") or datetime.now(UTC).date(),
            skip_catalog=skip,
        )
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {report.imported} entries to {output}")
    for provider, count in report.providers.most_common():
        click.echo(f"  {provider}: {count}")
    for reason, count in sorted(report.skipped.items()):
        click.echo(f"skipped {count}: {reason}")
    if report.dropped_fields:
        dropped = ", ".join(f"{name} ({count})" for name, count in report.dropped_fields.most_common(12))
        more = len(report.dropped_fields) - 12
        click.echo(f"fields not imported: {dropped}" + (f" and {more} more" if more > 0 else ""))
    if report.rounded:
        click.echo(
            f"rounded to 6 decimals per 1M tokens: {len(report.rounded)} rates, e.g. {report.rounded[0]}"
        )
    with otelcost_errors():
        _, issues = check(PricingConfig(shipped_catalog=False), [output])
    errors = [issue for issue in issues if issue.severity == "error"]
    for issue in errors[:10]:
        click.echo(f"error: {issue}", err=True)
    if errors:
        raise click.ClickException(f"the written catalog has {len(errors)} errors")


@click.command("reprice")
@config_options
@click.option("--since", metavar="DATE", required=True, help="First day (UTC) to re-price.")
@click.option(
    "--until", metavar="DATE", help="Stop before this day (UTC); default: up to the newest partition."
)
@partition_rewrite_options
@output_options
def reprice_command(
    *,
    since: str,
    until: str | None,
    dry_run: bool,
    lock_timeout: float,
    config_path: Path | None,
    data_dir: Path | None,
    fmt: str,
) -> None:
    """Recompute the cost columns of the lake from the stored tokens with the current catalog.

    Run it after correcting or extending a catalog. Each day's partition is rewritten
    atomically (readers see the old day or the new one) and only if a row's price changed;
    every row records the entry and version that priced it in price_ref.
    """
    config = load_cli_config(config_path, data_dir)
    first = parse_day(since, "--since")
    assert first is not None
    with otelcost_errors():
        pricer = Pricer(Catalog.load(config.pricing), config.pricing)
        results = reprice(
            config.lake_dir,
            pricer,
            since=first,
            until=parse_day(until, "--until"),
            dry_run=dry_run,
            lock_timeout=lock_timeout,
        )
    emit(_results_table(results), fmt)


def _results_table(results: list[PartitionResult]) -> pa.Table:
    money = pa.decimal128(38, 12)

    def column(values: list[Decimal]) -> pa.Array:
        return pa.array(values, type=money)

    return pa.table(
        {
            "date": pa.array([r.day for r in results], type=pa.date32()),
            "rows": pa.array([r.rows for r in results], type=pa.int64()),
            "changed_rows": pa.array([r.changed_rows for r in results], type=pa.int64()),
            "cost_before": column([r.cost_before for r in results]),
            "cost_after": column([r.cost_after for r in results]),
            "effective_before": column([r.effective_before for r in results]),
            "effective_after": column([r.effective_after for r in results]),
            "rewritten": pa.array([r.rewritten for r in results], type=pa.bool_()),
        }
    )


COMMANDS: list[click.Command] = [pricing, reprice_command]

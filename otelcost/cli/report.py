"""``otelcost report NAME``: the ready-made FinOps reports over the lake.

One subcommand per report of ``otelcost.reports.REPORTS``, all with the same options (period,
grouping, filters, output format); a few reports read more (``unit-economics --revenue``,
``chargeback --close``). Every subcommand builds a ``ReportRequest`` and calls ``run_report``,
the same call ``GET /v1/reports/NAME`` makes, so the CLI and the API cannot disagree.

Formats: ``table`` prints each section under its name; ``json`` prints the document the API
answers (money as strings); ``csv``/``jsonl`` print one section (the main one, or
``--section``); ``html`` writes a self-contained page (``--out``, default stdout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import click

from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.cli.output import emit, emit_sections
from otelcost.config import Config, report_context
from otelcost.reports import REPORTS, ReportRequest, ReportResult, run_report
from otelcost.reports.base import ReportSpec, request_problem
from otelcost.reports.chargeback import close_statement
from otelcost.reports.html import render_result

__all__ = ["COMMANDS", "report"]

REPORT_FORMATS: Final = ("table", "csv", "json", "jsonl", "html")


@click.group()
def report() -> None:
    """Ready-made FinOps reports over the lake (docs/reports.md)."""


def _common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--period", help="2026-11 (month), 2026-Q4, 2026-W45, 2026-11-05 or 2026. Default: this month."
        ),
        click.option(
            "--since", help="Instead of --period: from a date/time (2026-11-01) or a duration ago (30d)."
        ),
        click.option("--until", help="With --since: up to this date/time (exclusive). Default: now."),
        click.option("--by", "by", help="Group by these dimensions, comma-separated (team,feature)."),
        click.option(
            "--filter",
            "filters",
            multiple=True,
            metavar="DIM=VALUE",
            help="Only calls whose dimension has this value; repeatable.",
        ),
        click.option(
            "--top",
            type=click.IntRange(1, 10_000),
            default=10,
            show_default=True,
            help="Rows of top-N lists.",
        ),
        click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(REPORT_FORMATS),
            default="table",
            show_default=True,
            help="table (every section), json (the API's document), csv/jsonl (one section), html (a page).",
        ),
        click.option("--section", help="The section csv/jsonl print (default: the first)."),
        click.option(
            "-o",
            "--out",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write to this file instead of stdout.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return config_options(fn)


def _unit_economics_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--max-cost-share",
        default=None,
        help="Flag tenants whose AI cost passes this share of their revenue (default 0.3).",
    )(fn)
    fn = click.option(
        "--outcomes",
        "outcomes_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="CSV of feature, day, outcomes: cost per business outcome.",
    )(fn)
    fn = click.option(
        "--revenue",
        "revenue_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="CSV of tenant_id, period (2026-11), revenue_usd: gross margin per tenant.",
    )(fn)
    return fn


def _chargeback_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--close",
        metavar="PERIOD",
        help="Close a finished period (2026-11): write its statement, or its next version if the "
        "numbers changed since the last close.",
    )(fn)


def _close_period(config: Config, period: str, fmt: str, options: dict[str, Any]) -> None:
    given = [name for name in ("since", "until", "by", "filters") if options.get(name) not in (None, ())]
    if given or options.get("period") not in (None, period):
        raise click.UsageError("--close names the period; give no other --period, --since, --until, --by")
    with otelcost_errors():
        info = close_statement(report_context(config), period)
    if fmt == "json":
        document = {
            "period": info.period,
            "version": info.version,
            "written": info.written,
            "path": str(info.path),
            "created_at": info.created_at.isoformat(),
            "charged_usd": format(info.charged_usd, "f"),
            "previous_version": info.previous_version,
            "diff": str(info.diff_path) if info.diff_path else None,
        }
        click.echo(json.dumps(document, indent=2))
    elif info.written:
        diff = f"; changes against v{info.previous_version} in {info.diff_path}" if info.diff_path else ""
        charged = format(info.charged_usd, "f")
        click.echo(f"closed {info.period} as v{info.version}: {info.path} (charged {charged} USD){diff}")
    else:
        click.echo(
            f"{info.period} is unchanged: statement v{info.version} at {info.path} still equals the "
            "live numbers; nothing written"
        )


def _monthly_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--invoice-provider",
        type=click.Choice(("openai", "anthropic", "bedrock", "azure-openai")),
        help="Whose bill --invoice is (docs/reconciliation.md).",
    )(fn)
    return click.option(
        "--invoice",
        "invoice_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The provider's usage or cost export: adds the invoice reconciliation section; repeatable.",
    )(fn)


EXTRA_OPTIONS: Final[dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "unit-economics": _unit_economics_options,
    "chargeback": _chargeback_options,
    "monthly": _monthly_options,
}
"""Options only some reports read: a field of ReportRequest of the same name, except
chargeback's ``--close``, an action that ``_close_period`` carries out instead of the report."""


def _write(result: ReportResult, fmt: str, section: str | None, out: Path | None) -> None:
    if fmt == "html":
        text = render_html(result)
        if out is None:
            click.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            click.echo(f"wrote {out}", err=True)
        return
    with click.open_file(str(out) if out else "-", "w", encoding="utf-8") as stream:
        if fmt == "json":
            stream.write(json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n")
        elif fmt in ("csv", "jsonl"):
            name = section or next(iter(result.sections))
            if name not in result.sections:
                raise click.BadParameter(
                    f"no section {name!r}; this report has: {', '.join(result.sections)}",
                    param_hint="--section",
                )
            emit(result.sections[name], fmt, file=stream)
        else:
            emit_sections(result.sections, file=stream, titled=False)
    if fmt == "table":
        for note in result.notes:
            click.echo(f"note: {note}", err=True)


def render_html(result: ReportResult) -> str:
    """The report's own page when it has one (monthly), else the generic page of tables."""
    renderer = REPORTS[result.name].html
    return renderer(result) if renderer is not None else render_result(result)


def _make_command(spec: ReportSpec) -> click.Command:
    def command(
        config_path: Path | None,
        data_dir: Path | None,
        fmt: str,
        section: str | None,
        out: Path | None,
        **options: Any,
    ) -> None:
        config = load_cli_config(config_path, data_dir)
        close = options.pop("close", None)  # an action, not a ReportRequest field
        if close is not None:
            _close_period(config, close, fmt, options)
            return
        fields = {key: value for key, value in options.items() if value is not None and value != ()}
        try:
            request = ReportRequest(**fields)
        except ValueError as exc:
            raise click.UsageError(request_problem(exc)) from None
        with otelcost_errors():
            try:
                result = run_report(spec.name, report_context(config), request)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
        _write(result, fmt, section, out)

    command.__doc__ = spec.summary
    decorated = _common_options(command)
    extra = EXTRA_OPTIONS.get(spec.name)
    if extra is not None:
        decorated = extra(decorated)
    return click.command(spec.name, help=spec.summary)(decorated)


for _spec in REPORTS.values():
    report.add_command(_make_command(_spec))

COMMANDS: list[click.Command] = [report]

"""The monthly report: its sections against hand arithmetic, and its page in a real Chromium.

The lake holds two months of the steady company (October and November 2026) and a nightly job
that sends no team, with ``attribution.required: [team]``, so its spend is the unattributed
share. Every figure is recomputed here from the calls with ``cost_of``.

The browser tests open the page in headless Chromium and drive it over the Chrome DevTools
protocol (``--remote-debugging-port=0``; the port is read from ``DevToolsActivePort`` in a
throw-away profile, the websocket is aiohttp's client). That gives three things a DOM dump
cannot: the bars' rendered widths (the page laid out, not only parsed), every console message,
uncaught exception and browser log entry (a Content-Security-Policy refusal is one), and a
screenshot. A control test plants an external image in the real page and expects the browser
to refuse it and say so, so the "no errors" check is known to see errors. Without a
``chromium`` binary on PATH the browser tests skip and say why (``.ci/run`` installs Debian's).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from otelcost.budgets.config import BudgetConfig
from otelcost.cli import main
from otelcost.config import Config, report_context
from otelcost.errors import ReportError
from otelcost.reports import REPORTS, ReportContext, ReportRequest, run_report
from otelcost.reports.html import money_text
from otelcost.reports.monthly import render_monthly
from tests.reports.traffic import Call, build_lake, cost_of, day_start, steady_company

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def nightly_job() -> list[Call]:
    """A batch job with no team: 20 nights of gpt-4o in November."""
    return [
        Call(
            ts=day_start(date(2026, 11, 1) + timedelta(days=n)) + timedelta(hours=2),
            service="nightly-batch",
            team=None,
            feature="catalog-sync",
            model="gpt-4o",
            input_tokens=3_000 + 10 * n,
            output_tokens=300,
        )
        for n in range(20)
    ]


SPIKE_DAY = date(2026, 11, 18)


def payments_spike() -> list[Call]:
    """A Wednesday on which fraud-explain ran 150 more gpt-4o calls than usual (~$1.35 more)."""
    return [
        Call(
            ts=day_start(SPIKE_DAY) + timedelta(hours=13, seconds=20 * n),
            service="checkout",
            team="payments",
            feature="fraud-explain",
            model="gpt-4o",
            input_tokens=2_000,
            output_tokens=400,
        )
        for n in range(150)
    ]


@dataclass(frozen=True)
class Lake:
    calls: list[Call]
    config: Config

    @property
    def context(self) -> ReportContext:
        return replace(report_context(self.config), now=lambda: NOW)

    def month(self, month: int) -> list[Call]:
        return [c for c in self.calls if c.ts.year == 2026 and c.ts.month == month]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    calls = steady_company(date(2026, 10, 1), 61) + nightly_job() + payments_spike()
    config = build_lake(tmp_path_factory.mktemp("monthly"), calls, attribution={"required": ["team"]})
    return Lake(calls, config)


def total(calls: Iterable[Call]) -> Decimal:
    return sum((cost_of(c) for c in calls), Decimal(0))


def spend_by(calls: Iterable[Call], *keys: str) -> dict[tuple[Any, ...], Decimal]:
    out: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for call in calls:
        out[tuple(getattr(call, key) for key in keys)] += cost_of(call)
    return dict(out)


def expected_bars(lake: Lake) -> list[tuple[str, str, str]]:
    """(label, data-value, title) of each spend-by-team bar, by spend: the hand-made expectation."""
    teams = sorted(spend_by(lake.month(11), "team").items(), key=lambda item: -item[1])
    return [
        (team or "(no team)", money_text(cost), f"{team or '(no team)'}: ${money_text(cost)}")
        for (team,), cost in teams
    ]


def monthly(lake: Lake, **options: Any) -> Any:
    return run_report("monthly", lake.context, ReportRequest(period="2026-11", **options))


# -- the sections ---------------------------------------------------------------------------------------


def test_summary_is_the_hand_sum_against_october(lake: Lake) -> None:
    (summary,) = monthly(lake).sections["summary"].to_pylist()
    november, october = total(lake.month(11)), total(lake.month(10))
    unattributed = total(c for c in lake.month(11) if c.team is None)
    assert summary["calls"] == len(lake.month(11))
    assert summary["cost_usd"] == november and summary["effective_cost_usd"] == november
    assert summary["previous_cost_usd"] == october
    assert summary["change_usd"] == november - october
    assert summary["change_ratio"] == pytest.approx(float((november - october) / october), abs=1e-6)
    assert summary["unattributed_cost_usd"] == unattributed > 0
    assert summary["unattributed_share"] == pytest.approx(float(unattributed / november), abs=1e-6)
    assert (summary["previous_start"], summary["previous_end"]) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )


def test_spend_by_team_daily_and_movers(lake: Lake) -> None:
    result = monthly(lake)
    teams = sorted(spend_by(lake.month(11), "team").items(), key=lambda item: -item[1])
    assert [(r["team"], r["cost_usd"]) for r in result.sections["spend_by_team"].to_pylist()] == [
        (team, cost) for (team,), cost in teams
    ]

    daily = spend_by(lake.month(11), "ts")
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for (moment,), cost in daily.items():
        by_day[moment.date()] += cost
    rows = result.sections["daily"].to_pylist()
    assert [r["day"] for r in rows] == [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    assert {r["day"]: r["cost_usd"] for r in rows} == by_day

    now, before = spend_by(lake.month(11), "team", "feature"), spend_by(lake.month(10), "team", "feature")
    changes = {key: now.get(key, Decimal(0)) - before.get(key, Decimal(0)) for key in now.keys() | before}
    top = sorted((k for k in changes if changes[k]), key=lambda k: -abs(changes[k]))[:3]
    movers = monthly(lake, top=3).sections["movers"].to_pylist()
    assert [((r["team"], r["feature"]), r["change_usd"]) for r in movers] == [(k, changes[k]) for k in top]
    assert movers[0]["previous_cost_usd"] == before.get(top[0], Decimal(0))


PAYMENTS_MONTHLY = BudgetConfig.model_validate(
    {"name": "payments-monthly", "scope": {"team": "payments"}, "window": "month", "limit": "4"}
)


def test_composes_the_reports_that_are_installed(lake: Lake) -> None:
    context = replace(lake.context, budgets=(PAYMENTS_MONTHLY,))
    result = run_report("monthly", context, ReportRequest(period="2026-11"))
    services = result.sections["unattributed"].to_pylist()
    assert [(s["service"], s["incomplete_calls"], s["incomplete_cost_usd"]) for s in services] == [
        ("nightly-batch", 20, total(nightly_job()))
    ]
    assert result.sections["outcomes"].num_rows == 0  # unit-economics: no app.outcome in this traffic

    assert "forecast" in REPORTS
    payments = total(c for c in lake.month(11) if c.team == "payments")
    (budget,) = result.sections["budgets"].to_pylist()
    assert (budget["budget"], budget["spent"], budget["limit"]) == ("payments-monthly", payments, 4)
    # November is over: its projection is what was spent (effective = list: no discounts here).
    projection = {(r["scope_kind"], r["scope"]): r for r in result.sections["projection"].to_pylist()}
    assert {r["period"] for r in projection.values()} == {"month"}
    assert projection["total", None]["projected"] == total(lake.month(11))
    assert projection["team", "payments"]["actual_to_date"] == payments
    anomalies = run_report("anomalies", context, ReportRequest(period="2026-11")).sections["findings"]
    assert result.sections["anomalies"].equals(anomalies)
    spikes = [f for f in anomalies.to_pylist() if f["kind"] == "spike"]
    assert [(f["scope_kind"], f["scope_value"], f["start"].date()) for f in spikes] == [
        ("team", "payments", SPIKE_DAY)
    ]


def test_a_month_not_begun_leaves_the_forecast_out(lake: Lake) -> None:
    result = run_report("monthly", lake.context, ReportRequest(period="2027-01"))
    assert "projection" not in result.sections
    assert any(note.startswith("forecast: ") and "not started" in note for note in result.notes)
    assert result.sections["summary"].to_pylist()[0]["calls"] == 0
    assert render_monthly(result).count('class="bar"') == 31  # a month of empty days still draws


def test_a_filter_reaches_every_section(lake: Lake) -> None:
    result = monthly(lake, filters=["team=payments"])
    payments = [c for c in lake.month(11) if c.team == "payments"]
    (summary,) = result.sections["summary"].to_pylist()
    assert summary["cost_usd"] == total(payments) and summary["unattributed_cost_usd"] == 0
    assert [r["team"] for r in result.sections["spend_by_team"].to_pylist()] == ["payments"]
    assert sum(r["calls"] for r in result.sections["daily"].to_pylist()) == len(payments)


def test_only_a_calendar_month(lake: Lake) -> None:
    with pytest.raises(ReportError, match="one calendar month"):
        run_report("monthly", lake.context, ReportRequest(period="2026-Q4"))


# -- the page, read as HTML -----------------------------------------------------------------------------


class Bars(HTMLParser):
    """The rects of every chart, by chart id: (data-label, data-value, title)."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self.tags: set[str] = set()
        self._chart: str | None = None
        self._rect: dict[str, str | None] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "svg":
            self._chart = values.get("id")
        elif tag == "rect":
            self._rect = values
        elif tag == "title" and self._rect is not None:
            self._in_title = True

    def handle_data(self, data: str) -> None:
        if self._in_title and self._rect is not None and self._chart is not None:
            rect = self._rect
            self.charts[self._chart].append((str(rect["data-label"]), str(rect["data-value"]), data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "rect":
            self._rect = None


MONTHLY = ("report", "monthly", "--period", "2026-11")


def test_the_cli_writes_one_self_contained_page(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "monthly.html"
    result = CliRunner().invoke(
        main,
        [*MONTHLY, "--data-dir", str(lake.config.data_dir), "--format", "html", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    parser = Bars()
    parser.feed(text)
    assert parser.charts["spend-by-team-chart"] == expected_bars(lake)
    assert len(parser.charts["daily-spend-chart"]) == 30
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert "Content-Security-Policy" in text and "http://" not in text.replace(
        "http://www.w3.org/2000/svg", ""
    )
    for heading in (
        "Spend by team",
        "Daily spend",
        "Top movers",
        "Budgets and projection",
        "Anomalies",
        "Unattributed spend",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert f"<td>spike</td><td>team=payments</td><td>{SPIKE_DAY.isoformat()}</td>" in text

    as_json = CliRunner().invoke(
        main,
        [*MONTHLY, "--data-dir", str(lake.config.data_dir), "-f", "json"],
    )
    assert as_json.exit_code == 0, as_json.output
    sections = json.loads(as_json.stdout)["sections"]
    assert list(sections)[:4] == ["summary", "spend_by_team", "daily", "movers"]
    assert Decimal(sections["summary"][0]["cost_usd"]) == total(lake.month(11))


# -- the page, in Chromium ------------------------------------------------------------------------------


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")


@dataclass
class Rendered:
    rects: dict[str, list[dict[str, Any]]]
    problems: list[str] = field(default_factory=list)
    screenshot: bytes = b""


BROWSER_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--no-first-run",
    "--remote-debugging-port=0",
    "--window-size=1200,2400",
)

RECTS_JS = """JSON.stringify(Object.fromEntries(
  [...document.querySelectorAll('svg.chart')].map(svg => [svg.id,
    [...svg.querySelectorAll('rect')].map(r => ({label: r.dataset.label, value: r.dataset.value,
      title: r.querySelector('title').textContent, width: r.getBoundingClientRect().width,
      height: r.getBoundingClientRect().height}))])))"""
"""Every chart's bars as the browser laid them out (DevTools evaluation is not the page's script:
the page's policy forbids scripts, and DevTools does not need its permission)."""


class DevTools:
    """A minimal Chrome DevTools protocol client over one websocket (flattened sessions)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def receive(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), timeout=30)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        self._next += 1
        request: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        await self.ws.send_str(json.dumps(request))
        while True:
            message = await self.receive()
            if message.get("id") == self._next:
                assert "error" not in message, message
                return message["result"]
            self.events.append(message)

    async def wait_for(self, method: str) -> None:
        while not any(event.get("method") == method for event in self.events):
            self.events.append(await self.receive())


def problems_in(events: Iterable[dict[str, Any]]) -> list[str]:
    """Console errors and warnings, uncaught exceptions, and browser log errors (CSP refusals)."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            found.append(f"log {params['entry']['source']}: {params['entry']['text']}")
    return found


def devtools_address(profile: Path) -> tuple[str, str] | None:
    """(port, browser websocket path) from the profile's DevToolsActivePort, once written whole."""
    try:
        words = (profile / "DevToolsActivePort").read_text().split()
    except FileNotFoundError:
        return None
    return (words[0], words[1]) if len(words) >= 2 else None


async def _render(browser: str, page: Path) -> Rendered:
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while (address := devtools_address(Path(profile))) is None:
                assert process.poll() is None, f"chromium exited with {process.returncode}"
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                await asyncio.sleep(0.05)
            port, path = address
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws,
            ):
                tools = DevTools(ws)
                target = (await tools.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
                session = (await tools.call("Target.attachToTarget", {"targetId": target, "flatten": True}))[
                    "sessionId"
                ]
                for domain in ("Page", "Runtime", "Log"):
                    await tools.call(f"{domain}.enable", session=session)
                await tools.call("Page.navigate", {"url": page.as_uri()}, session=session)
                await tools.wait_for("Page.loadEventFired")
                evaluated = await tools.call(
                    "Runtime.evaluate", {"expression": RECTS_JS, "returnByValue": True}, session=session
                )
                shot = await tools.call("Page.captureScreenshot", {"format": "png"}, session=session)
                await tools.call("Browser.close")
                return Rendered(
                    json.loads(evaluated["result"]["value"]),
                    problems_in(tools.events),
                    base64.b64decode(shot["data"]),
                )
        finally:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def render(page: Path) -> Rendered:
    return asyncio.run(_render(chromium_binary(), page))


@pytest.fixture(scope="module")
def page(lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("page") / "monthly-2026-11.html"
    path.write_text(render_monthly(monthly(lake)), encoding="utf-8")
    yield path


@pytest.mark.slow
def test_chromium_renders_one_bar_per_team_by_spend_without_errors(lake: Lake, page: Path) -> None:
    rendered = render(page)
    assert rendered.problems == []

    bars = rendered.rects["spend-by-team-chart"]
    assert [(b["label"], b["value"], b["title"]) for b in bars] == expected_bars(lake)
    widths = [b["width"] for b in bars]
    assert widths == sorted(widths, reverse=True) and widths[-1] > 0
    values = [Decimal(b["value"]) for b in bars]
    for width, value in zip(widths, values, strict=True):  # laid out to scale, not only parsed
        assert width == pytest.approx(widths[0] * float(value / values[0]), abs=0.6)

    days = rendered.rects["daily-spend-chart"]
    assert len(days) == 30 and all(day["height"] > 0 for day in days)
    assert rendered.screenshot.startswith(b"\x89PNG\r\n\x1a\n") and len(rendered.screenshot) > 20_000


@pytest.mark.slow
def test_chromium_reports_a_page_that_reaches_out(page: Path, tmp_path: Path) -> None:
    # The control of the test above: the same page with one external image. The page's
    # Content-Security-Policy must refuse it and the browser must say so, or "no problems"
    # above would prove nothing.
    reaching = tmp_path / "reaching.html"
    reaching.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>", '<img src="http://127.0.0.1:9/pixel.png"></body>'
        ),
        encoding="utf-8",
    )
    problems = render(reaching).problems
    assert any("Content Security Policy" in p and "127.0.0.1:9" in p for p in problems), problems

"""SQL injection through every report filter and option: bound or refused, never interpolated.

A small lake is built through the real pipeline with one call whose team *is* a classic payload
(``x' OR '1'='1``). Every payload is then sent through every dimension's filter and every
dimension name slot (``by``, ``filter`` keys, ``sections``, ``period``...), both with
:func:`run_report` and over the HTTP API of a running server. The answer is either a clear
400 / ReportError naming the field, or exactly what an honest filter on that literal value
gives; and the lake's files and the ``llm_calls`` view are the same afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from otelcost.config import Config, report_context
from otelcost.errors import ReportError
from otelcost.lake.query import LakeSession, run_query
from otelcost.reports import REPORTS, ReportContext, ReportRequest, run_report
from otelcost.reports.dimensions import ALIASES, DIMENSIONS
from tests.reports.conftest import api_over
from tests.reports.traffic import Call, build_lake, day_start

pytestmark = pytest.mark.slow

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
PLANTED_TEAM = "x' OR '1'='1"
PAYLOADS = (
    PLANTED_TEAM,
    "'); DROP VIEW llm_calls; --",
    "team; SELECT 1",
    '"; DROP TABLE llm_calls; --',
    "' UNION SELECT * FROM read_csv('/etc/passwd') --",
    "\\' OR 1=1 --",
    "\\",
    "équipe-ünïcødé-团队-🚀",
    "a\x00b",
    "$filter_0",
)


@dataclass(frozen=True)
class Lake:
    config: Config

    @property
    def context(self) -> ReportContext:
        return replace(report_context(self.config), now=lambda: NOW)


def _calls() -> list[Call]:
    calls = []
    for index in range(12):
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 2 + index)) + timedelta(hours=9),
                service="irish-app",
                team="o'brien" if index % 2 else "payments",
                feature="blarney",
                model="gpt-4o-mini",
                input_tokens=700,
                output_tokens=70,
                tenant=f"tenant-{index % 3}",
            )
        )
    calls.append(
        Call(
            ts=day_start(date(2026, 11, 20)) + timedelta(hours=9),
            service="evil",
            team=PLANTED_TEAM,
            feature="'); DROP VIEW llm_calls; --",
            model="gpt-4o-mini",
            input_tokens=100,
            output_tokens=10,
        )
    )
    return calls


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(build_lake(tmp_path_factory.mktemp("injection"), _calls()))


def _fingerprint(lake_dir: Path) -> tuple[dict[str, str], int]:
    """Every file of the lake with its sha256, and the rows the view shows."""
    files = {
        str(path.relative_to(lake_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake_dir.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }
    rows = run_query(lake_dir, "SELECT count(*) AS n FROM llm_calls").column("n")[0].as_py()
    return files, rows


def _honest_count(lake: LakeSession, dimension: str, value: str) -> int:
    """Rows of November whose ``dimension`` is exactly ``value``, asked with a bound parameter."""
    where = f"{DIMENSIONS[dimension]} = $v AND date >= DATE '2026-11-01'"
    sql = f"SELECT count(*) AS n FROM llm_calls WHERE {where}"
    return int(lake.query(sql, {"v": value}).column("n")[0].as_py())


@pytest.fixture(scope="module")
def before(lake: Lake) -> tuple[dict[str, str], int]:
    return _fingerprint(lake.config.lake_dir)


def test_every_filter_value_is_bound_in_showback(lake: Lake, before: tuple[dict[str, str], int]) -> None:
    context = lake.context
    with LakeSession(lake.config.lake_dir) as honest:
        for dimension in DIMENSIONS:
            for payload in PAYLOADS:
                request = ReportRequest(period="2026-11", by=("team",), filters=((dimension, payload),))
                rows = run_report("showback", context, request).sections["spend"].to_pylist()
                calls = sum(int(row["calls"]) for row in rows)
                assert calls == _honest_count(honest, dimension, payload), (dimension, payload)
    # The planted payload is a real team: an honest filter finds exactly its one call.
    planted = run_report(
        "showback", context, ReportRequest(period="2026-11", by="team", filters=(("team", PLANTED_TEAM),))
    ).sections["spend"]
    assert planted.column("team").to_pylist() == [PLANTED_TEAM]
    assert _fingerprint(lake.config.lake_dir) == before


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_binds_its_filters(name: str, lake: Lake, before: tuple[dict[str, str], int]) -> None:
    for payload in PAYLOADS:
        request = ReportRequest(period="2026-11", filters=(("team", payload), ("feature", payload)))
        try:
            result = run_report(name, lake.context, request)
        except ValueError as exc:  # chargeback bills every call: it refuses filters, by name
            assert "filter" in str(exc), exc
            continue
        assert result.name == name
    assert _fingerprint(lake.config.lake_dir) == before


@pytest.mark.parametrize("field", ["by", "filters", "sections", "period", "since", "until"])
def test_payloads_in_names_and_periods_are_refused(field: str, lake: Lake) -> None:
    for payload in PAYLOADS:
        value: object = [f"{payload}=x"] if field == "filters" else payload
        try:
            request = ReportRequest.model_validate({field: value})
            run_report("showback", lake.context, request)
        except ValueError as exc:
            # pydantic names the field; the period parser says what it expected instead
            assert field in str(exc) or "expected a" in str(exc), exc
            continue
        except ReportError as exc:
            message = str(exc)
            assert any(word in message for word in ("period", "section", "since", "until", "date")), message
            continue
        pytest.fail(f"{field}={payload!r} was accepted")


def test_dimension_names_never_reach_sql_unmapped() -> None:
    # Only names of the whitelist (or their aliases) parse; the SQL is the fixed expression.
    for name in [*DIMENSIONS, *ALIASES]:
        (canonical,) = ReportRequest(by=name).by
        assert canonical in DIMENSIONS
    with pytest.raises(ValueError, match="unknown dimension"):
        ReportRequest(by='team"; DROP VIEW llm_calls; --')


@pytest.fixture(scope="module")
def api(lake: Lake) -> Iterator[httpx.Client]:
    with api_over(lake.config.data_dir) as client:
        yield client


def test_the_http_api_binds_every_filter(
    api: httpx.Client, lake: Lake, before: tuple[dict[str, str], int]
) -> None:
    # run_report gets every dimension x payload (above); the HTTP layer only turns query
    # parameters into the same request, so every dimension and every payload pass it once.
    pairs = [(dimension, PAYLOADS[i % len(PAYLOADS)]) for i, dimension in enumerate(DIMENSIONS)]
    pairs += [("team", payload) for payload in PAYLOADS]
    with LakeSession(lake.config.lake_dir) as honest:
        for dimension, payload in pairs:
            answer = api.get(
                "/v1/reports/showback",
                params=[("period", "2026-11"), ("by", "team"), ("filter", f"{dimension}={payload}")],
            )
            assert answer.status_code == 200, (dimension, payload, answer.text)
            calls = sum(int(row["calls"]) for row in answer.json()["sections"]["spend"])
            assert calls == _honest_count(honest, dimension, payload), (dimension, payload)
    answer = api.get("/v1/reports/showback", params={"period": "2026-11", "filter": f"team={PLANTED_TEAM}"})
    assert [row["team"] for row in answer.json()["sections"]["spend"]] == [PLANTED_TEAM]
    assert _fingerprint(lake.config.lake_dir) == before


@pytest.mark.parametrize("parameter", ["by", "filter", "period", "since", "until", "top"])
def test_the_http_api_refuses_payloads_in_names(parameter: str, api: httpx.Client) -> None:
    for payload in PAYLOADS:
        value = f"{payload}=x" if parameter == "filter" else payload
        answer = api.get("/v1/reports/showback", params={parameter: value})
        assert answer.status_code == 400, (parameter, payload, answer.text)
        message = answer.json()["error"]["message"]
        assert parameter in message or "period" in message or "expected a" in message, message
    unknown = api.get("/v1/reports/showback", params={"x' OR '1'='1": "1"})
    assert unknown.status_code == 400 and "unknown query parameter" in unknown.json()["error"]["message"]
    assert api.get("/healthz").status_code == 200


def test_every_report_over_http_survives_payloads(
    api: httpx.Client, lake: Lake, before: tuple[dict[str, str], int]
) -> None:
    for name in REPORTS:
        for payload in PAYLOADS[:4]:
            answer = api.get(
                f"/v1/reports/{name}", params=[("period", "2026-11"), ("filter", f"team={payload}")]
            )
            assert answer.status_code in (200, 400), (name, payload, answer.text)
    assert _fingerprint(lake.config.lake_dir) == before
    assert _fingerprint(lake.config.lake_dir)[1] == len(_calls())


def test_sql_over_the_api_is_read_only(
    api: httpx.Client, lake: Lake, before: tuple[dict[str, str], int]
) -> None:
    # POST /v1/query runs SQL as otelcost sql does (docs/security.md): the lake only, no writes.
    assert api.get("/v1/query", params={"sql": "SELECT 1"}).status_code == 405
    lake_dir = lake.config.lake_dir
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"COPY (SELECT 1) TO '{lake_dir}/llm_calls/x.parquet'",
        "ATTACH '/tmp/otelcost-injection.db'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ):
        answer = api.post("/v1/query", json={"sql": sql})
        assert answer.status_code == 400, (sql, answer.text)
    counted = api.post("/v1/query", json={"sql": "SELECT count(*) AS n FROM llm_calls"})
    assert counted.status_code == 200 and counted.json()["rows"] == [{"n": len(_calls())}]
    assert _fingerprint(lake_dir) == before

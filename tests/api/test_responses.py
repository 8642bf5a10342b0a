"""The one table from domain errors to HTTP statuses, over real HTTP through the real app.

Each domain error is raised by the admin operation behind a route (a real evaluator whose
``delete_budget`` raises what the test says) and must come back with its status in the API's
one error shape. The errors the real evaluator raises on its own are checked too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import BaseModel, ValidationError

from otelcost import errors
from otelcost.api import build_api_app
from otelcost.api.responses import ERROR_STATUSES, error_status
from otelcost.budgets import BudgetEntry, Evaluator
from otelcost.policy.config import ApiConfig
from tests.budgets.harness import ApiServer
from tests.policy.conftest import TEAM_MONTHLY, assert_error, run_policy

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer s3cret"}


class _Positive(BaseModel):
    value: int


def _validation_error() -> ValidationError:
    try:
        _Positive.model_validate({"value": "many"})
    except ValidationError as exc:
        return exc
    raise AssertionError("the model accepted an invalid value")


class FailingEvaluator(Evaluator):
    """A real evaluator whose ``delete_budget`` raises the error a test sets."""

    error: BaseException = RuntimeError("not set")

    def delete_budget(self, name: str, *, actor: str, note: str | None = None) -> BudgetEntry:
        raise self.error


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FailingEvaluator, str]]:
    evaluator = FailingEvaluator(
        budgets=[TEAM_MONTHLY], state_dir=tmp_path_factory.mktemp("state"), run_threads=False
    )
    evaluator.start()
    config = ApiConfig.model_validate({"admin_token": "s3cret"})
    server = ApiServer(lambda: build_api_app(evaluator=evaluator, config=config)).start()
    try:
        yield evaluator, server.url
    finally:
        server.stop()
        evaluator.shutdown()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.UnknownBudgetError("no budget named 'x'"), 404),
        (errors.UnknownOverrideError("no override 'x'"), 404),
        (errors.InvalidOverrideError("until is in the past"), 400),
        (errors.BudgetAdminError("that change cannot be made"), 400),
        (ValueError("limit must be positive"), 400),
        (_validation_error(), 400),
        (errors.LakeError("the lake cannot be read"), 500),
        (errors.LakeLockTimeoutError("the lake lock was not free in time"), 500),
        (errors.ConfigError("budgets[0].window: invalid"), 500),
        (errors.OtelcostError("something of ours failed"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_each_domain_error_has_its_status_and_the_error_shape(
    failing: tuple[FailingEvaluator, str], error: Exception, status: int
) -> None:
    evaluator, url = failing
    evaluator.error = error
    response = requests.delete(f"{url}/v1/admin/budgets/x", headers=ADMIN, timeout=5)
    assert response.headers["Content-Type"].startswith("application/json")
    assert_error(response, status, str(error))
    assert response.json()["error"]["message"] == str(error)


def test_a_server_side_domain_error_is_logged(
    failing: tuple[FailingEvaluator, str], caplog: pytest.LogCaptureFixture
) -> None:
    evaluator, url = failing
    evaluator.error = errors.LakeError("the lake cannot be read")
    with caplog.at_level(logging.ERROR, logger="otelcost.api"):
        assert requests.delete(f"{url}/v1/admin/budgets/x", headers=ADMIN, timeout=5).status_code == 500
    assert any("the lake cannot be read" in record.getMessage() for record in caplog.records)


def test_an_error_that_is_not_ours_stays_a_plain_500(failing: tuple[FailingEvaluator, str]) -> None:
    evaluator, url = failing
    evaluator.error = RuntimeError("a bug")
    response = requests.delete(f"{url}/v1/admin/budgets/x", headers=ADMIN, timeout=5)
    assert response.status_code == 500
    assert "a bug" not in response.text  # aiohttp's own answer: no internals leak


def test_the_real_evaluator_s_errors_map_through_the_table(tmp_path: Path) -> None:
    evaluator, server, _ = run_policy(tmp_path, api={"admin_token": "s3cret"})
    url = server.url
    try:
        assert_error(
            requests.delete(f"{url}/v1/admin/budgets/nope", headers=ADMIN, timeout=5),
            404,
            "no budget named 'nope'",
        )
        assert_error(
            requests.delete(f"{url}/v1/admin/overrides/nope", headers=ADMIN, timeout=5),
            404,
            "no override 'nope'",
        )
        assert_error(
            requests.put(
                f"{url}/v1/admin/overrides/raise",
                json={"action": "raise_limit", "budget": "nope", "limit": "5"},
                headers=ADMIN,
                timeout=5,
            ),
            400,
            "no budget named 'nope'",
        )
    finally:
        server.stop()
        evaluator.shutdown()


def test_every_error_of_ours_has_a_status_and_no_entry_is_shadowed() -> None:
    for name in errors.__all__:
        error_type = getattr(errors, name)
        assert error_status(error_type("x")) is not None, name
    for index, (error_type, _) in enumerate(ERROR_STATUSES):
        earlier = [base for base, _ in ERROR_STATUSES[:index] if issubclass(error_type, base)]
        assert not earlier, f"{error_type.__name__} can never match: {earlier[0].__name__} comes first"
    assert error_status(RuntimeError("x")) is None

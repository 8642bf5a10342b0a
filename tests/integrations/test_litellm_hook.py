"""The LiteLLM hook through LiteLLM's own hook API, against a real policy endpoint.

``OtelcostBudgetHook.async_pre_call_hook`` is awaited as the proxy awaits it (litellm/proxy/
utils.py, ``ProxyLogging.pre_call_hook``) with LiteLLM's ``UserAPIKeyAuth``; a refusal must be the
``ProxyException`` the proxy answers as its error JSON. The endpoint (tests/policy/conftest.py)
runs at 2026-03-14T10:00Z with team ``ml`` blocked (130 of 100 USD this month, past the 120 %
block) and team ``search`` under budget. tests/integrations/test_litellm_proxy.py runs the
same hook inside a real proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

# (tests/conftest.py keeps litellm on its bundled price map: no fetch from the internet.)
pytest.importorskip("litellm.proxy._types", reason="litellm is not installed")

from litellm.proxy._types import ProxyException, UserAPIKeyAuth

from otelcost.api import build_api_app
from otelcost.auth.config import AuthConfig
from otelcost.auth.keys import KeyRing, key_digest, new_key
from otelcost.budgets.evaluator import Evaluator
from otelcost.errors import ConfigError
from otelcost.integrations.litellm import (
    LiteLLMHookSettings,
    OtelcostBudgetHook,
    request_dimensions,
)
from otelcost.policy.client import PolicyClient
from otelcost.policy.config import ApiConfig
from tests.budgets.harness import ApiServer, Clock
from tests.budgets.rows import calls
from tests.integrations.litellm_proxy import free_port
from tests.policy.conftest import START, TEAM_MONTHLY, Running, policy_running

RETRY_AFTER = "1519200"  # 2026-03-14T10:00Z to 2026-04-01T00:00Z: 17 d 14 h


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with policy_running(tmp_path_factory.mktemp("hook")) as live:
        live.evaluator.consume(calls(1, at=START, cost="130", team="ml"))
        live.evaluator.tick()
        yield live


def hook_for(endpoint: Running, **settings: Any) -> OtelcostBudgetHook:
    config = LiteLLMHookSettings.model_validate({"url": endpoint.url, **settings})
    client = PolicyClient(endpoint.url, clock_ns=endpoint.clock) if config.mode == "local" else None
    return OtelcostBudgetHook(config, client=client)


def call(hook: OtelcostBudgetHook, auth: UserAPIKeyAuth, data: dict[str, Any] | None = None) -> Any:
    async def run() -> Any:
        try:
            return await hook.async_pre_call_hook(
                user_api_key_dict=auth,
                cache=None,
                data=data or {"model": "gpt-4o-mini"},
                call_type="acompletion",
            )
        finally:
            if hook._client is not None:
                hook._client.close()
            if hook._session is not None:
                await hook._session.close()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["local", "check"])
def test_a_blocked_team_gets_litellms_error_shape(endpoint: Running, mode: str) -> None:
    with pytest.raises(ProxyException) as refused:
        call(hook_for(endpoint, mode=mode), UserAPIKeyAuth(team_id="t-1", team_alias="ml"))
    error = refused.value
    assert error.code == "429"
    assert error.type == "budget_exceeded"
    assert error.to_dict()["code"] == "429"
    assert "team-monthly" in error.message and "team=ml" in error.message
    assert error.headers["Retry-After"] == RETRY_AFTER
    assert error.headers["X-Otelcost-Action"] == "block"
    assert error.headers["X-Otelcost-Budget"] == "team-monthly"


def test_other_teams_pass_unchanged(endpoint: Running) -> None:
    hook = hook_for(endpoint)
    assert call(hook, UserAPIKeyAuth(team_alias="search")) is None
    assert (hook.passed, hook.refused) == (1, 0)


def test_the_deny_status_is_configurable(endpoint: Running) -> None:
    with pytest.raises(ProxyException) as refused:
        call(hook_for(endpoint, deny_status=403), UserAPIKeyAuth(team_alias="ml"))
    assert refused.value.code == "403"


def test_check_mode_fails_closed_or_open_when_otelcost_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    closed = OtelcostBudgetHook(LiteLLMHookSettings(url=url, mode="check", fail_mode="closed"))
    with pytest.raises(ProxyException, match="unreachable"):
        call(closed, UserAPIKeyAuth(team_alias="search"))
    opened = OtelcostBudgetHook(LiteLLMHookSettings(url=url, mode="check", fail_mode="open"))
    assert call(opened, UserAPIKeyAuth(team_alias="search")) is None


def test_dimensions_come_from_the_key_first_then_tags_and_metadata() -> None:
    auth = UserAPIKeyAuth(team_id="t-1", user_id="internal-7", project_id="p-1", project_alias="web")
    data = {
        "user": "end-user-42",
        "metadata": {"tags": ["feature:search", "team:spoofed", "nonsense"], "workflow": "triage"},
        "tags": ["tenant_id:acme"],
    }
    assert request_dimensions(auth, data, LiteLLMHookSettings()) == {
        "team": "t-1",  # no alias: the id; a tag never overrides the key's team
        "user_id": "end-user-42",
        "project": "web",
        "feature": "search",
        "tenant_id": "acme",
        "workflow": "triage",
    }
    only_key = request_dimensions(UserAPIKeyAuth(user_id="internal-7"), {}, LiteLLMHookSettings())
    assert only_key == {"user_id": "internal-7"}


def test_settings_from_the_environment() -> None:
    settings = LiteLLMHookSettings.from_environ(
        {
            "OTELCOST_LITELLM_URL": "http://otelcost:4320",
            "OTELCOST_LITELLM_MODE": "check",
            "OTELCOST_LITELLM_DENY_STATUS": "403",
            "OTELCOST_LITELLM_METADATA_DIMENSIONS": "feature, workflow",
        }
    )
    assert (settings.url, settings.mode, settings.deny_status) == ("http://otelcost:4320", "check", 403)
    assert settings.metadata_dimensions == ("feature", "workflow")
    with pytest.raises(ConfigError, match=r"^OTELCOST_LITELLM_DENY_STATUS: Input should be greater than"):
        LiteLLMHookSettings.from_environ({"OTELCOST_LITELLM_DENY_STATUS": "200"})
    with pytest.raises(ConfigError, match=r"^OTELCOST_LITELLM_\*: Value error, reserve needs mode 'local'"):
        LiteLLMHookSettings.from_environ({"OTELCOST_LITELLM_MODE": "check", "OTELCOST_LITELLM_RESERVE": "1"})


class _Usage:
    prompt_tokens = 1200
    completion_tokens = 300


class _Response:
    usage = _Usage()


def test_reserving_refuses_a_call_that_does_not_fit_and_releases_on_the_logged_end(endpoint: Running) -> None:
    endpoint.evaluator.consume(calls(1, at=START, cost="90", team="ops"))  # 90 of 100: 10 left
    endpoint.evaluator.tick()
    hook = hook_for(endpoint, reserve=True, settle_after=60)
    auth = UserAPIKeyAuth(team_alias="ops")
    # 20M output tokens of gpt-4o-mini at $0.60 / 1M: $12 > $10 left.
    huge = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20_000_000}
    small = {**huge, "max_tokens": 100, "litellm_call_id": "c-1"}

    async def run() -> None:
        try:
            with pytest.raises(ProxyException) as refused:
                await hook.async_pre_call_hook(auth, None, huge, "acompletion")
            assert refused.value.code == "429"
            assert refused.value.headers["Retry-After"] == "1"  # room comes back as calls end
            assert refused.value.headers["X-Otelcost-Action"] == "throttle"
            assert "does not fit the 10 left" in refused.value.message
            assert await hook.async_pre_call_hook(auth, None, small, "acompletion") is None
            assert hook._reservations is not None
            # ("user" + "Hi") 6 bytes + 8 per message = 14 input tokens at $0.15 / 1M, 100 output at
            # $0.60 / 1M: $0.0000021 + $0.00006.
            assert hook._reservations.held({"team": "ops"}) == Decimal("0.0000621")
            await hook.async_log_success_event(
                {"litellm_call_id": "c-1", "response_cost": 0.001}, _Response(), None, None
            )
            assert hook._holds == {}
            # Released, but its (larger, real) cost counts until it can have been published.
            assert hook._reservations.held({"team": "ops"}) == Decimal("0.001")
        finally:
            assert hook._client is not None
            hook._client.close()

    asyncio.run(run())


def test_reserving_needs_the_local_mode() -> None:
    with pytest.raises(ValueError, match="reserve needs mode 'local'"):
        LiteLLMHookSettings(mode="check", reserve=True)


@pytest.fixture
def keyed_endpoint(tmp_path: Path) -> Iterator[tuple[Running, str]]:
    """A policy endpoint that refuses callers without its gateway key (``auth.anonymous.api: deny``)."""
    key = new_key()
    ring = KeyRing(
        AuthConfig.model_validate(
            {
                "anonymous": {"api": "deny"},
                "keys": [{"name": "litellm", "digest": key_digest(key), "roles": ["gateway"]}],
            }
        )
    )
    clock = Clock(START)
    evaluator = Evaluator(
        budgets=[TEAM_MONTHLY], state_dir=tmp_path / "state", clock_ns=clock, run_threads=False
    )
    evaluator.start()
    evaluator.consume(calls(1, at=START, cost="130", team="ml"))
    evaluator.tick()
    server = ApiServer(
        lambda: build_api_app(evaluator=evaluator, config=ApiConfig(), keys=ring, clock_ns=clock)
    ).start()
    try:
        yield Running(evaluator, server, clock), key
    finally:
        server.stop()
        evaluator.shutdown()


def test_check_mode_sends_the_gateway_key(keyed_endpoint: tuple[Running, str]) -> None:
    endpoint, key = keyed_endpoint
    keyed = LiteLLMHookSettings.model_validate({"url": endpoint.url, "mode": "check", "key": key})
    with pytest.raises(ProxyException) as refused:
        call(OtelcostBudgetHook(keyed), UserAPIKeyAuth(team_alias="ml"))
    assert refused.value.headers["X-Otelcost-Budget"] == "team-monthly"  # otelcost's own refusal

    # Without the key /v1/check is a 401: no answer, so the hook fails as configured.
    keyless = LiteLLMHookSettings.model_validate(
        {"url": endpoint.url, "mode": "check", "fail_mode": "closed"}
    )
    with pytest.raises(ProxyException) as unreachable:
        call(OtelcostBudgetHook(keyless), UserAPIKeyAuth(team_alias="search"))
    assert "401" in unreachable.value.message


def test_local_mode_polls_with_the_gateway_key(keyed_endpoint: tuple[Running, str]) -> None:
    endpoint, key = keyed_endpoint

    def first_snapshot(**settings: Any) -> bool:
        hook = OtelcostBudgetHook(
            LiteLLMHookSettings.model_validate({"url": endpoint.url, "startup_wait": 2, **settings})
        )

        async def run() -> bool:
            client = await hook._local()
            try:
                return client.snapshot is not None
            finally:
                client.close()

        return asyncio.run(run())

    assert first_snapshot(key=key)
    assert not first_snapshot(startup_wait=0.5)  # 401 on every poll: never a snapshot

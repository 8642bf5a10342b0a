"""otelcost budgets enforced inside the LiteLLM proxy: a pre-call hook.

Load it from the proxy's config (``deploy/litellm/config.yaml``)::

    litellm_settings:
      callbacks: ["otelcost.integrations.litellm.budget_hook", "otel"]

Before each call the proxy awaits :meth:`OtelcostBudgetHook.async_pre_call_hook`. The hook
turns what LiteLLM knows about the request into otelcost scope dimensions
(:func:`request_dimensions`: the key's team, the end user, the project, ``dimension:value``
tags, request metadata) and asks otelcost: by default a local copy of the decisions kept by
:class:`~otelcost.policy.client.PolicyClient` (no I/O per call), or ``/v1/check`` per request
(``OTELCOST_LITELLM_MODE=check``). A throttled or blocked scope is refused with LiteLLM's own
error: a ``ProxyException`` the proxy answers as ``{"error": {"message", "type":
"budget_exceeded", "param", "code"}}`` with HTTP 429 (or ``OTELCOST_LITELLM_DENY_STATUS``) and
``Retry-After``. Other calls pass unchanged.

With ``OTELCOST_LITELLM_RESERVE=true`` the hook also reserves each call's estimated spend
(``otelcost.policy.reservations``, estimates from ``otelcost.integrations.estimate``) and
releases it when LiteLLM logs the call's end (success, failure, or a later hook's refusal),
settled with LiteLLM's ``response_cost``.

Settings come from the environment (:class:`LiteLLMHookSettings`), since LiteLLM instantiates
callbacks by import path. The spend itself reaches otelcost through LiteLLM's ``otel`` callback
(OTLP spans); the dimensions here must name the same values the lake's attribution reads from
those spans, which ``deploy/litellm/otelcost.yaml`` arranges.

This module imports ``litellm`` (the proxy's own package); nothing else in otelcost does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

import aiohttp
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from otelcost.auth.keys import KEY_HEADER
from otelcost.errors import ConfigError
from otelcost.integrations.estimate import CatalogEstimator
from otelcost.policy.client import PolicyClient
from otelcost.policy.decisions import Action, CheckResult, Decision
from otelcost.policy.reservations import Estimate, Hold, Reservations
from otelcost.schema import ATTRIBUTION_DIMENSIONS

__all__ = [
    "LiteLLMHookSettings",
    "OtelcostBudgetHook",
    "budget_hook",
    "budget_refusal",
    "request_dimensions",
]

log = logging.getLogger(__name__)

DIMENSIONS: Final = (*ATTRIBUTION_DIMENSIONS, "service", "provider", "model")
ENV_PREFIX: Final = "OTELCOST_LITELLM_"
ERROR_TYPE: Final = "budget_exceeded"


class LiteLLMHookSettings(BaseModel):
    """How the hook reaches otelcost and refuses calls (env ``OTELCOST_LITELLM_<FIELD>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field("http://127.0.0.1:4320", description="otelcost's API listener.")
    key: SecretStr | None = Field(
        None,
        description="otelcost API key with the gateway role, sent as X-Otelcost-Key on polls and "
        "checks; unset: anonymous (allowed from loopback by default, docs/security.md).",
    )
    mode: Literal["local", "check"] = Field(
        "local", description="local: keep the decisions in process; check: GET /v1/check per call."
    )
    fail_mode: Literal["open", "closed"] = Field(
        "open", description="Without decisions (never reached, stale, or /v1/check failing)."
    )
    deny_status: int = Field(429, ge=400, le=499, description="HTTP status of a refused call.")
    max_staleness: float | None = Field(None, gt=0, description="local: distrust older snapshots (s).")
    startup_wait: float = Field(5.0, ge=0, description="local: wait this long for a first snapshot (s).")
    check_timeout: float = Field(0.5, gt=0, description="check: timeout of one /v1/check (s).")
    reserve: bool = Field(
        False,
        description="local: also reserve each call's estimated spend against its budgets' headroom "
        "(otelcost.policy.reservations), released when LiteLLM logs the call's end.",
    )
    settle_after: float = Field(
        15.0, ge=0, description="reserve: how long an ended call's hold still counts (s)."
    )
    max_hold: float = Field(600.0, gt=0, description="reserve: a hold never released ends after this (s).")
    default_max_output_tokens: int = Field(
        4096, gt=0, description="reserve: the output bound of a request without max_tokens."
    )
    metadata_dimensions: tuple[str, ...] = Field(
        ("feature", "workflow", "session_id", "tenant_id", "environment", "cost_center"),
        description="Request metadata keys read as dimensions. The client writes these: only "
        "list dimensions whose budgets a client may be trusted to name.",
    )

    @model_validator(mode="after")
    def _reserve_needs_local(self) -> LiteLLMHookSettings:
        if self.reserve and self.mode != "local":
            raise ValueError("reserve needs mode 'local' (the reservations live in the hook's process)")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LiteLLMHookSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            text = env.get(ENV_PREFIX + name.upper())
            if text is None or text == "":
                continue
            if name == "metadata_dimensions":
                values[name] = tuple(part.strip() for part in text.split(",") if part.strip())
            else:
                values[name] = text
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ENV_PREFIX + str(first["loc"][0]).upper() if first["loc"] else "OTELCOST_LITELLM_*"
            raise ConfigError(f"{where}: {first['msg']}") from exc


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def request_dimensions(
    auth: UserAPIKeyAuth, data: Mapping[str, Any], settings: LiteLLMHookSettings
) -> dict[str, str]:
    """otelcost dimensions of one proxy request, from authenticated facts first.

    ``team``: the key's team alias, else its team id. ``user_id``: the end user (the request's
    ``user``, LiteLLM's ``end_user_id``), else the key's internal user. ``project``: the
    project alias, else its id. Tags ``dimension:value`` (``metadata.tags``, ``tags``) and the
    request metadata keys of ``settings.metadata_dimensions`` fill the others; they never
    replace what the key says.
    """
    dims: dict[str, str] = {}

    def put(dim: str, *candidates: object) -> None:
        if dim in dims:
            return
        for candidate in candidates:
            text = _text(candidate)
            if text is not None:
                dims[dim] = text
                return

    put("team", auth.team_alias, auth.team_id)
    put("user_id", data.get("user"), auth.end_user_id, auth.user_id)
    put("project", auth.project_alias, auth.project_id)
    metadata: dict[str, Any] = {}
    for key in ("metadata", "litellm_metadata"):
        block = data.get(key)
        if isinstance(block, dict):
            metadata.update(block)
    tags = [*_tags(metadata.get("tags")), *_tags(data.get("tags"))]
    for tag in tags:
        dim, sep, value = tag.partition(":")
        if sep and dim.strip() in DIMENSIONS:
            put(dim.strip(), value)
    for dim in settings.metadata_dimensions:
        put(dim, metadata.get(dim))
    return dims


def _tags(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    return []


def budget_refusal(result: CheckResult, status: int) -> ProxyException:
    """LiteLLM's own error for a refused call: the proxy answers it as JSON with ``status``."""
    headers = {"X-Otelcost-Action": result.action.value, "X-Otelcost-Version": str(result.version)}
    if result.decision is not None:
        headers["X-Otelcost-Budget"] = result.decision.budget or result.decision.override_id or ""
    if result.retry_after is not None:
        headers["Retry-After"] = str(result.retry_after)
    return ProxyException(
        message=f"otelcost: {result.reason}",
        type=ERROR_TYPE,
        param=None,
        code=status,
        headers=headers,
        openai_code=ERROR_TYPE,
    )


class OtelcostBudgetHook(CustomLogger):
    """LiteLLM pre-call hook refusing calls whose otelcost scope is throttled or blocked."""

    def __init__(
        self, settings: LiteLLMHookSettings | None = None, *, client: PolicyClient | None = None
    ) -> None:
        super().__init__()
        self.settings = settings or LiteLLMHookSettings.from_environ()
        self._client = client
        self._polling = False
        self._started = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._reservations: Reservations | None = None
        self._estimator: CatalogEstimator | None = None
        self._holds: dict[str, Hold] = {}  # by litellm_call_id
        self.refused = 0
        self.passed = 0

    async def _local(self) -> PolicyClient:
        async with self._started:
            if self._client is None:
                self._client = PolicyClient(
                    self.settings.url,
                    headers=self._key_header(),
                    fail_mode=self.settings.fail_mode,
                    max_staleness=self.settings.max_staleness,
                )
            if not self._polling:
                self._client.start()  # idempotent; a client handed in is started here too
                self._polling = True
                # Off the event loop: the first snapshot is one loopback round trip away.
                await asyncio.to_thread(self._client.wait_for_version, 0, self.settings.startup_wait)
                if self.settings.reserve:
                    self._reservations = Reservations(
                        self._client, settle_after=self.settings.settle_after, max_hold=self.settings.max_hold
                    )
                    self._estimator = await asyncio.to_thread(
                        CatalogEstimator, default_max_output_tokens=self.settings.default_max_output_tokens
                    )
        return self._client

    def _key_header(self) -> dict[str, str]:
        key = self.settings.key
        return {KEY_HEADER: key.get_secret_value()} if key is not None else {}

    async def check(self, dimensions: Mapping[str, str]) -> CheckResult:
        """otelcost's answer for ``dimensions``, locally or from ``/v1/check``."""
        if self.settings.mode == "local":
            return (await self._local()).check(dimensions)
        return await self._remote_check(dimensions)

    async def _remote_check(self, dimensions: Mapping[str, str]) -> CheckResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.check_timeout)
            )
        headers = {f"X-Otelcost-{dim.replace('_', '-')}": value for dim, value in dimensions.items()}
        headers.update(self._key_header())
        try:
            async with self._session.get(
                f"{self.settings.url.rstrip('/')}/v1/check", headers=headers
            ) as response:
                body = json.loads(await response.read())
                budget = response.headers.get("X-Otelcost-Budget")
                if response.status != 200 and "allowed" not in body:
                    raise OSError(f"/v1/check answered {response.status}")
        except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            action = Action.ALLOW if self.settings.fail_mode == "open" else Action.BLOCK
            return CheckResult(
                action, None, (), 0, f"otelcost unreachable ({exc}); failing {self.settings.fail_mode}"
            )
        action = Action(body["action"])
        retry_after = body.get("retry_after")
        # /v1/check names the deciding budget in a header; a stand-in decision carries it on.
        decision = (
            Decision(
                budget=budget, scope={}, action=action, reason=str(body.get("reason", "")), computed_at_ns=0
            )
            if budget
            else None
        )
        return CheckResult(
            action,
            decision,
            (),
            int(body.get("version", 0)),
            str(body.get("reason", "")),
            retry_after if isinstance(retry_after, int) else None,
        )

    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: Any,
        data: dict[str, Any],
        call_type: Any,
    ) -> dict[str, Any] | None:
        dimensions = request_dimensions(user_api_key_dict, data, self.settings)
        if self.settings.reserve:
            result = await self._reserve(dimensions, data)
        else:
            result = await self.check(dimensions)
        if not result.allowed:
            self.refused += 1
            log.info("otelcost refused a call of %s: %s", dimensions, result.reason)
            raise budget_refusal(result, self.settings.deny_status)
        self.passed += 1
        return None

    async def _reserve(self, dimensions: Mapping[str, str], data: Mapping[str, Any]) -> CheckResult:
        await self._local()
        assert self._reservations is not None and self._estimator is not None
        result, hold = self._reservations.try_reserve(dimensions, self._estimator.for_request(data))
        call_id = data.get("litellm_call_id")
        if hold is not None:
            if isinstance(call_id, str):
                self._holds[call_id] = hold
            else:  # nothing to release it by later: count it as ended now (it still settles)
                hold.release()
        return result

    # -- the end of a call: release its hold ---------------------------------------------------

    def _end(self, kwargs: Mapping[str, Any], response: object | None) -> None:
        call_id = kwargs.get("litellm_call_id")
        hold = self._holds.pop(call_id, None) if isinstance(call_id, str) else None
        if hold is None:
            return
        cost = kwargs.get("response_cost")
        usage = getattr(response, "usage", None)
        if isinstance(cost, int | float) and usage is not None:
            hold.settle(
                Estimate(
                    cost_usd=Decimal(str(cost)),
                    input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                )
            )
        hold.release()

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._end(kwargs, response_obj)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._end(kwargs, None)

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> Any:
        self._end(request_data, None)
        return None


budget_hook = OtelcostBudgetHook()
"""The instance LiteLLM loads (``otelcost.integrations.litellm.budget_hook``)."""

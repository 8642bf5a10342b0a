"""Agent frameworks whose spans wrap LLM calls: an agent run with two model calls is two calls.

Each test runs a real agent framework against the loopback fake provider: the agent calls a
tool, then answers, so it makes exactly two model calls (the fake provider answers a request that
offers tools with a tool call, then with text). The agent runs inside the application's handler
span, which carries the five dimensions; the real OTLP exporters (gRPC and HTTP, every span in
its own request as it ends, so the handler and the agent span arrive after the calls) send to a
running otelcost, and the lake is read back with ``otelcost sql``:

- pydantic-ai with its own OpenTelemetry instrumentation (chat completions);
- the OpenAI Agents SDK through OpenInference (the Responses API, run and streamed);
- LangChain (``ChatOpenAI``) through OpenInference.

Expected per call: the fake's usage (1200 input tokens of which 1024 cached, 300 output of which
64 reasoning), the five dimensions of the handler, and the agent's name as ``workflow``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import agents
import langchain_openai
import pydantic_ai
import pytest
from click.testing import CliRunner
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from openai import AsyncOpenAI
from openinference.instrumentation.langchain import LangChainInstrumentor
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from otelcost.cli import main
from otelcost.server import BackgroundServer
from tests.e2e.conftest import otlp_exporter

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

AGENT_NAME = "refund-agent"
HANDLER_ATTRIBUTES = {
    "app.team": "payments",
    "app.feature": "refunds",
    "app.tenant": "acme-corp",
    "user.id": "u-42",
    "session.id": "s-7",
}
EXPECTED = {
    "team": "payments",
    "feature": "refunds",
    "tenant_id": "acme-corp",
    "user_id": "u-42",
    "session_id": "s-7",
    "workflow": AGENT_NAME,
}


def _pydantic_ai(url: str, tracer_provider: TracerProvider) -> Callable[[], None]:
    client = AsyncOpenAI(base_url=url + "/v1", api_key="test-key", max_retries=0)
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client))
    pydantic_ai.Agent.instrument_all(InstrumentationSettings(tracer_provider=tracer_provider))
    agent = pydantic_ai.Agent(model, name=AGENT_NAME)

    @agent.tool_plain
    def lookup_order() -> str:
        return "order 42"

    async def run_async() -> Any:
        try:
            return (await agent.run("Where is my refund?")).output
        finally:
            await client.close()

    def run() -> None:
        try:
            assert asyncio.run(run_async()) == "Hello!"
        finally:
            pydantic_ai.Agent.instrument_all(False)

    return run


def _openai_agents(url: str, tracer_provider: TracerProvider, *, streamed: bool) -> Callable[[], None]:
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    client = AsyncOpenAI(base_url=url + "/v1", api_key="test-key", max_retries=0)

    @agents.function_tool
    def lookup_order() -> str:
        return "order 42"

    model = agents.OpenAIResponsesModel("gpt-4o-mini", client)
    agent = agents.Agent(name=AGENT_NAME, instructions="Help.", tools=[lookup_order], model=model)

    async def run_async() -> Any:
        try:
            if not streamed:
                return (await agents.Runner.run(agent, "Where is my refund?")).final_output
            result = agents.Runner.run_streamed(agent, "Where is my refund?")
            async for _ in result.stream_events():
                pass
            return result.final_output
        finally:
            await client.close()

    def run() -> None:
        try:
            assert asyncio.run(run_async()) == "Hello!"
        finally:
            instrumentor.uninstrument()

    return run


def _langchain(url: str, tracer_provider: TracerProvider) -> Callable[[], None]:
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)

    @tool
    def lookup_order() -> str:
        """Look the order up."""
        return "order 42"

    llm = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=url + "/v1", api_key="test-key")
    model = llm.bind_tools([lookup_order])

    def loop(question: str) -> Any:
        messages: list[BaseMessage] = [HumanMessage(question)]
        first = model.invoke(messages)
        messages.append(first)
        for call in first.tool_calls:
            messages.append(ToolMessage(lookup_order.invoke(call["args"]), tool_call_id=call["id"]))
        return model.invoke(messages).content

    agent = RunnableLambda(loop).with_config(run_name=AGENT_NAME)

    def run() -> None:
        try:
            assert agent.invoke("Where is my refund?") == "Hello!"
        finally:
            instrumentor.uninstrument()

    return run


FRAMEWORKS: dict[str, Callable[[str, TracerProvider], Callable[[], None]]] = {
    "pydantic_ai": _pydantic_ai,
    "openai_agents": lambda url, tp: _openai_agents(url, tp, streamed=False),
    "openai_agents_streamed": lambda url, tp: _openai_agents(url, tp, streamed=True),
    "langchain": _langchain,
}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_an_agent_run_with_two_model_calls_is_two_calls(
    running: BackgroundServer, provider_url: str, protocol: str, framework: str
) -> None:
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "refund-service"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(otlp_exporter(running, protocol)))
    run = FRAMEWORKS[framework](provider_url, tracer_provider)
    tracer = tracer_provider.get_tracer("refund-service")
    try:
        with tracer.start_as_current_span("POST /refund", attributes=HANDLER_ATTRIBUTES):
            run()
    finally:
        tracer_provider.shutdown()
    running.stop()  # drains and flushes the lake

    query = (
        "SELECT convention, scope_name, input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, "
        "team, feature, tenant_id, user_id, session_id, workflow FROM llm_calls ORDER BY ts"
    )
    result = CliRunner().invoke(
        main, ["sql", "--data-dir", str(running.server.config.data_dir), "--format", "json", query]
    )
    assert result.exit_code == 0, result.output
    calls: list[dict[str, Any]] = json.loads(result.output)
    assert len(calls) == 2, calls
    for call in calls:
        tokens = (
            call["input_tokens"],
            call["cache_read_tokens"],
            call["output_tokens"],
            call["reasoning_tokens"],
        )
        assert tokens == (1200, 1024, 300, 64), call
        assert {name: call[name] for name in EXPECTED} == EXPECTED, call

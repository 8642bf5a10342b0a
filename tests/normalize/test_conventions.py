"""Each convention's spans, built from the library's public docs and source, land as the right row.

The attribute sets below are what the named library version emits for one call (see
docs/conventions.md for the sources); every expected row follows the lake contract: input counts
all input tokens with cache reads and writes as parts, output counts all output with reasoning as
a part.
"""

from __future__ import annotations

from typing import Any

import pytest

from otelcost.normalize import AttributionConfig, Normalizer, NormalizeResult
from tests.normalize.otlp_builders import NOW_NS, SpanSpec, request


def normalize(
    *spans: SpanSpec, resource: dict[str, Any] | None = None, scope: str = "test"
) -> NormalizeResult:
    return Normalizer(AttributionConfig()).normalize(
        request(spans, resource=resource, scope=scope), received_at_ns=NOW_NS
    )


def one_row(attrs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    resource = kw.pop("resource", None)
    scope = kw.pop("scope", "test")
    result = normalize(SpanSpec(attrs, **kw), resource=resource, scope=scope)
    assert result.rejected == 0, result.rejected_reasons
    assert result.calls.num_rows == 1, result.dropped
    row: dict[str, Any] = result.calls.to_pylist()[0]
    return row


def tokens(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        row["input_tokens"],
        row["output_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
    )


# -- OpenTelemetry GenAI -------------------------------------------------------------------------


def test_gen_ai_current_keys() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.input_tokens": 1700,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 500,
            "gen_ai.usage.reasoning.output_tokens": 30,
        }
    )
    assert row["convention"] == "gen_ai"
    assert (row["provider"], row["operation"]) == ("anthropic", "chat")
    assert (row["request_model"], row["response_model"]) == (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    )
    assert tokens(row) == (1700, 80, 1000, 500, 30)


def test_gen_ai_cache_write_key_of_the_genai_repository() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 1700,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_write.input_tokens": 500,
            "gen_ai.usage.cache_creation.input_tokens": 499,  # the newer key wins
        }
    )
    assert row["cache_write_tokens"] == 500


@pytest.mark.parametrize(
    ("system", "provider"),
    [
        ("openai", "openai"),
        ("az.ai.openai", "azure.ai.openai"),
        ("az.ai.inference", "azure.ai.inference"),
        ("xai", "x_ai"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("aws.bedrock", "aws.bedrock"),
        ("mistral_ai", "mistral_ai"),
        ("deepseek", "deepseek"),
        ("cohere", "cohere"),
        ("SomeNewLab", "somenewlab"),
    ],
)
def test_gen_ai_deprecated_system_and_token_keys(system: str, provider: str) -> None:
    row = one_row(
        {
            "gen_ai.system": system,
            "gen_ai.request.model": "m",
            "gen_ai.usage.prompt_tokens": 10,
            "gen_ai.usage.completion_tokens": 5,
        }
    )
    assert row["provider"] == provider
    assert tokens(row)[:2] == (10, 5)
    assert row["operation"] == "chat"  # from the span name "chat gpt-4o"


def test_provider_name_beats_system_when_both_are_set() -> None:
    # Logfire and pydantic-ai set both.
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "gcp.vertex_ai",
            "gen_ai.system": "gemini",
            "gen_ai.usage.input_tokens": 1,
        }
    )
    assert row["provider"] == "gcp.vertex_ai"


def test_provider_from_server_address_when_no_convention_names_it() -> None:
    row = one_row({"gen_ai.operation.name": "chat", "server.address": "my-res.openai.azure.com"})
    assert row["provider"] == "azure.ai.openai"
    assert tokens(row) == (0, 0, 0, 0, 0)


def test_pydantic_ai_details_reasoning_key() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.details.reasoning_tokens": 20,
        }
    )
    assert tokens(row) == (100, 50, 0, 0, 20)


def test_pydantic_ai_aggregated_usage_on_agent_run_is_not_a_call() -> None:
    result = normalize(
        SpanSpec(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support",
                "gen_ai.aggregated_usage.input_tokens": 500,
                "gen_ai.aggregated_usage.output_tokens": 90,
            },
            name="invoke_agent support",
        )
    )
    assert result.calls.num_rows == 0
    assert result.dropped == {"not_llm": 1}


def test_remote_agent_with_usage_and_no_calls_below_is_a_call() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.agent.name": "bedrock-agent",
            "gen_ai.usage.input_tokens": 900,
            "gen_ai.usage.output_tokens": 100,
        },
        name="invoke_agent bedrock-agent",
    )
    assert row["operation"] == "invoke_agent"
    assert row["workflow"] == "bedrock-agent"
    assert tokens(row)[:2] == (900, 100)


def test_tool_span_without_usage_is_not_a_call() -> None:
    result = normalize(
        SpanSpec({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, name="execute_tool")
    )
    assert (result.calls.num_rows, dict(result.dropped)) == (0, {"not_llm": 1})


def test_plain_http_span_is_not_llm() -> None:
    result = normalize(SpanSpec({"http.request.method": "GET", "url.full": "https://x"}, name="GET"))
    assert (result.calls.num_rows, dict(result.dropped)) == (0, {"not_llm": 1})


# -- OpenLLMetry / Traceloop ---------------------------------------------------------------------


def test_openllmetry_legacy_openai_span() -> None:
    # opentelemetry-instrumentation-openai before 2025-10-30 (semconv-ai 0.4.x)
    row = one_row(
        {
            "gen_ai.system": "OpenAI",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.prompt_tokens": 1200,
            "gen_ai.usage.completion_tokens": 300,
            "llm.usage.total_tokens": 1500,
            "gen_ai.usage.cache_read_input_tokens": 1024,
            "llm.usage.reasoning_tokens": 64,
            "llm.is_streaming": False,
            "traceloop.association.properties.user_id": "u-1",
            "traceloop.association.properties.session_id": "s-1",
            "traceloop.association.properties.customer_id": "acme",
        },
        name="openai.chat",
    )
    assert (row["convention"], row["provider"], row["operation"]) == ("traceloop", "openai", "chat")
    assert tokens(row) == (1200, 300, 1024, 0, 64)
    assert (row["user_id"], row["session_id"], row["tenant_id"]) == ("u-1", "s-1", "acme")


def test_openllmetry_legacy_anthropic_span_with_underscore_cache_keys() -> None:
    # opentelemetry-instrumentation-anthropic since 2024-10: input already includes the cache.
    row = one_row(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "completion",
            "gen_ai.usage.prompt_tokens": 1700,
            "gen_ai.usage.completion_tokens": 80,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 500,
        },
        name="anthropic.completion",
    )
    assert (row["convention"], row["provider"], row["operation"]) == (
        "traceloop",
        "anthropic",
        "text_completion",
    )
    assert tokens(row) == (1700, 80, 1000, 500, 0)


def test_openllmetry_workflow_span_is_a_wrapper_and_names_the_workflow() -> None:
    root = SpanSpec(
        {"traceloop.span.kind": "workflow", "traceloop.workflow.name": "answer_ticket"},
        name="answer_ticket.workflow",
    )
    call = root.child(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 2,
            "gen_ai.usage.total_tokens": 12,
            "traceloop.workflow.name": "answer_ticket",
        },
        name="openai.chat",
    )
    result = normalize(root, call)
    assert result.calls.num_rows == 1
    row = result.calls.to_pylist()[0]
    assert (row["convention"], row["workflow"]) == ("traceloop", "answer_ticket")


# -- OpenLIT ---------------------------------------------------------------------------------------


def test_openlit_anthropic_input_excludes_cache_and_is_converted() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 200,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 500,
            "gen_ai.usage.total_tokens": 280,
            "gen_ai.response.service_tier": "priority",
            "deployment.environment": "staging",
        },
        resource={
            "service.name": "bot",
            "telemetry.sdk.name": "openlit",
            "deployment.environment": "staging",
        },
        scope="openlit.otel.tracing",
    )
    assert row["convention"] == "openlit"
    assert tokens(row) == (1700, 80, 1000, 500, 0)
    assert row["service_tier"] == "priority"
    assert row["environment"] == "staging"
    assert dict(row["attributes"])["otelcost.usage_notes"] == "cache_added"


def test_openlit_openai_input_already_includes_cache() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1024,
            "gen_ai.usage.reasoning_tokens": 64,
        },
        resource={"service.name": "bot", "telemetry.sdk.name": "openlit"},
    )
    assert tokens(row) == (1200, 300, 1024, 0, 64)


# -- OpenInference ---------------------------------------------------------------------------------


def test_openinference_openai_on_azure() -> None:
    row = one_row(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.provider": "azure",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": '{"model": "gpt-4o", "service_tier": "priority"}',
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 300,
            "llm.token_count.total": 1500,
            "llm.token_count.prompt_details.cache_read": 1024,
            "llm.token_count.completion_details.reasoning": 64,
            "session.id": "sess-9",
            "user.id": "user-9",
            "metadata": '{"tenant": "acme"}',
        },
        name="ChatCompletion",
    )
    assert (row["convention"], row["provider"], row["operation"]) == (
        "openinference",
        "azure.ai.openai",
        "chat",
    )
    assert (row["request_model"], row["response_model"]) == ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06")
    assert tokens(row) == (1200, 300, 1024, 0, 64)
    assert row["service_tier"] == "priority"
    assert (row["session_id"], row["user_id"]) == ("sess-9", "user-9")


def test_openinference_anthropic_with_cache_write() -> None:
    row = one_row(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "anthropic",
            "llm.provider": "anthropic",
            "llm.request.model_name": "claude-sonnet-4-5",
            "llm.response.model_name": "claude-sonnet-4-5-20250929",
            "llm.token_count.prompt": 1700,
            "llm.token_count.completion": 80,
            "llm.token_count.prompt_details.cache_read": 1000,
            "llm.token_count.prompt_details.cache_write": 500,
        },
        name="messages.create",
    )
    assert (row["request_model"], row["response_model"]) == (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    )
    assert tokens(row) == (1700, 80, 1000, 500, 0)


def test_old_openinference_anthropic_raw_input_is_caught_by_the_guard() -> None:
    # Before March 2025 the Anthropic instrumentor reported the raw, cache-exclusive input.
    row = one_row(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.token_count.prompt": 200,
            "llm.token_count.completion": 80,
            "llm.token_count.prompt_details.cache_read": 1000,
            "llm.token_count.prompt_details.cache_write": 500,
        }
    )
    assert tokens(row) == (1700, 80, 1000, 500, 0)
    assert dict(row["attributes"])["otelcost.usage_notes"] == "cache_exceeds_input"


def test_openinference_embedding_span() -> None:
    row = one_row(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 42,
            "llm.token_count.total": 42,
        },
        name="CreateEmbeddings",
    )
    assert (row["operation"], row["request_model"]) == ("embeddings", "text-embedding-3-small")
    assert tokens(row) == (42, 0, 0, 0, 0)


def test_openinference_chain_span_without_usage_is_not_a_call() -> None:
    result = normalize(
        SpanSpec({"openinference.span.kind": "CHAIN", "input.value": "x"}, name="RunnableSequence")
    )
    assert result.dropped == {"not_llm": 1}


# -- Vercel AI SDK -----------------------------------------------------------------------------------


def test_vercel_ai_v5_anthropic_step_converts_cache_exclusive_input() -> None:
    row = one_row(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "operation.name": "ai.generateText.doGenerate my-fn",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.model.provider": "anthropic.messages",
            "gen_ai.system": "anthropic.messages",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "ai.usage.inputTokens": 200,
            "ai.usage.outputTokens": 80,
            "ai.usage.totalTokens": 280,
            "ai.usage.cachedInputTokens": 1000,
            "gen_ai.usage.input_tokens": 200,
            "gen_ai.usage.output_tokens": 80,
            "ai.response.providerMetadata": '{"anthropic":{"cacheCreationInputTokens":500}}',
            "ai.telemetry.functionId": "my-fn",
            "ai.telemetry.metadata.userId": "u-7",
            "ai.telemetry.metadata.sessionId": "s-7",
        },
        name="ai.generateText.doGenerate",
    )
    assert (row["convention"], row["provider"], row["operation"]) == ("vercel_ai", "anthropic", "chat")
    assert tokens(row) == (1700, 80, 1000, 500, 0)
    assert (row["user_id"], row["session_id"], row["workflow"]) == ("u-7", "s-7", "my-fn")


def test_vercel_ai_6_0_119_details_mean_inclusive_input() -> None:
    row = one_row(
        {
            "ai.operationId": "ai.streamText.doStream",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.model.provider": "anthropic.messages",
            "ai.usage.inputTokens": 1700,
            "ai.usage.outputTokens": 80,
            "ai.usage.inputTokenDetails.noCacheTokens": 200,
            "ai.usage.inputTokenDetails.cacheReadTokens": 1000,
            "ai.usage.inputTokenDetails.cacheWriteTokens": 500,
            "ai.usage.outputTokenDetails.reasoningTokens": 20,
        },
        name="ai.streamText.doStream",
    )
    assert tokens(row) == (1700, 80, 1000, 500, 20)


def test_vercel_ai_v4_openai_prompt_tokens_and_embeddings() -> None:
    row = one_row(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.id": "gpt-4o",
            "ai.model.provider": "openai.chat",
            "ai.usage.promptTokens": 1200,
            "ai.usage.completionTokens": 300,
        },
        name="ai.generateText.doGenerate",
    )
    assert (row["provider"], tokens(row)) == ("openai", (1200, 300, 0, 0, 0))
    row = one_row(
        {
            "ai.operationId": "ai.embedMany.doEmbed",
            "ai.model.id": "text-embedding-3-small",
            "ai.model.provider": "openai.embedding",
            "ai.usage.tokens": 77,
        },
        name="ai.embedMany.doEmbed",
    )
    assert (row["operation"], tokens(row)) == ("embeddings", (77, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("raw", "provider"),
    [
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("google.generative-ai", "gcp.gemini"),
        ("amazon-bedrock", "aws.bedrock"),
        ("azure-openai.chat", "azure.ai.openai"),
        ("mistral.chat", "mistral_ai"),
        ("xai.chat", "x_ai"),
        ("openai.responses", "openai"),
        ("groq.chat", "groq"),
    ],
)
def test_vercel_ai_provider_ids(raw: str, provider: str) -> None:
    row = one_row(
        {"ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": raw, "ai.usage.inputTokens": 1},
        name="ai.generateText.doGenerate",
    )
    assert row["provider"] == provider


def test_vercel_ai_root_and_step_spans_count_once() -> None:
    root = SpanSpec(
        {
            "ai.operationId": "ai.generateText",
            "ai.model.provider": "openai.chat",
            "ai.usage.promptTokens": 300,
            "ai.usage.completionTokens": 30,
        },
        name="ai.generateText",
    )
    steps = [
        root.child(
            {
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.provider": "openai.chat",
                "ai.usage.promptTokens": n,
                "ai.usage.completionTokens": 10,
            },
            name="ai.generateText.doGenerate",
        )
        for n in (100, 200)
    ]
    result = normalize(root, *steps)
    assert result.calls.num_rows == 2
    assert sum(result.calls["input_tokens"].to_pylist()) == 300
    assert result.dropped == {"wrapper_usage": 1}


# -- Langfuse ----------------------------------------------------------------------------------------


def test_langfuse_native_usage_details_are_disjoint_parts() -> None:
    row = one_row(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "claude-sonnet-4-5-20250929",
            "langfuse.observation.usage_details": (
                '{"input": 200, "output": 60, "input_cache_read": 1000, "input_cache_creation_5m": 300,'
                ' "input_cache_creation_1h": 200, "output_reasoning_tokens": 20, "total": 1780}'
            ),
            "langfuse.user.id": "u-3",
            "langfuse.session.id": "s-3",
            "langfuse.environment": "staging",
            "langfuse.trace.name": "support-bot",
        },
        name="generation",
    )
    assert row["convention"] == "langfuse"
    assert tokens(row) == (1700, 80, 1000, 500, 20)
    assert row["response_model"] == "claude-sonnet-4-5-20250929"
    assert (row["user_id"], row["session_id"], row["environment"], row["workflow"]) == (
        "u-3",
        "s-3",
        "staging",
        "support-bot",
    )


def test_langfuse_openai_integration_passes_openai_usage_as_a_map() -> None:
    row = one_row(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o",
            "langfuse.observation.usage_details": {
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 64},
            },
        }
    )
    assert tokens(row) == (1200, 300, 1024, 0, 64)


def test_langfuse_anthropic_shaped_usage() -> None:
    row = one_row(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.usage_details": (
                '{"input_tokens": 200, "output_tokens": 80, "cache_read_input_tokens": 1000,'
                ' "cache_creation_input_tokens": 500}'
            ),
        }
    )
    assert tokens(row) == (1700, 80, 1000, 500, 0)


def test_langfuse_error_level_marks_the_call_failed() -> None:
    row = one_row(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.level": "ERROR",
            "langfuse.observation.status_message": "rate limited",
            "langfuse.observation.usage_details": '{"input": 0, "output": 0}',
        }
    )
    assert (row["status"], row["error_type"]) == ("error", "rate limited")


# -- several conventions on one span ---------------------------------------------------------------


def test_openinference_with_genai_output_switched_on_reads_gen_ai_tokens_only() -> None:
    # OPENINFERENCE_ENABLE_GENAI_SEMCONV=true: both vocabularies on one span. Tokens come from one
    # convention only (gen_ai, earlier in the registry), never mixed.
    row = one_row(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.token_count.prompt": 999,
            "llm.token_count.completion": 99,
            "llm.token_count.prompt_details.cache_read": 9,
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
        }
    )
    assert row["convention"] == "gen_ai"
    assert tokens(row) == (1200, 300, 0, 0, 0)


def test_vercel_keys_win_over_the_gen_ai_copies_on_vercel_spans() -> None:
    row = one_row(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.usage.inputTokens": 200,
            "ai.usage.outputTokens": 80,
            "ai.usage.cachedInputTokens": 1000,
            "gen_ai.system": "anthropic.messages",
            "gen_ai.usage.input_tokens": 200,
            "gen_ai.usage.output_tokens": 80,
        },
        name="ai.generateText.doGenerate",
    )
    assert row["convention"] == "vercel_ai"
    assert tokens(row)[:3] == (1200, 80, 1000)


# -- value types and odd shapes ----------------------------------------------------------------------


def test_counts_as_strings_and_doubles() -> None:
    row = one_row(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": "1200",
            "gen_ai.usage.output_tokens": 300.0,
            "gen_ai.usage.cache_read.input_tokens": " 1024 ",
            "gen_ai.usage.reasoning.output_tokens": "64.0",
        }
    )
    assert tokens(row) == (1200, 300, 1024, 0, 64)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-5, "negative_token_count"),
        ("-5", "negative_token_count"),
        (2_000_000_000, "absurd_token_count"),
        (12.5, "invalid_token_count"),
        ("lots", "invalid_token_count"),
        (True, "invalid_token_count"),
        (float("nan"), "invalid_token_count"),
        ([1, 2], "invalid_token_count"),
    ],
)
def test_invalid_counts_reject_the_span(value: Any, reason: str) -> None:
    result = normalize(SpanSpec({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": value}))
    assert result.calls.num_rows == 0
    assert (result.rejected, dict(result.rejected_reasons)) == (1, {reason: 1})


def test_total_only_counts_as_input_and_is_noted() -> None:
    row = one_row({"openinference.span.kind": "LLM", "llm.token_count.total": 500})
    assert tokens(row) == (500, 0, 0, 0, 0)
    assert dict(row["attributes"])["otelcost.usage_notes"] == "total_only"


def test_total_with_one_side_derives_the_other() -> None:
    row = one_row(
        {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 400, "llm.usage.total_tokens": 500}
    )
    assert tokens(row)[:2] == (400, 100)


def test_reasoning_larger_than_output_is_added() -> None:
    # Gemini's candidatesTokenCount excludes thoughts; an emitter passing it through as output.
    row = one_row(
        {
            "gen_ai.operation.name": "generate_content",
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 40,
            "gen_ai.usage.reasoning.output_tokens": 300,
        }
    )
    assert tokens(row) == (100, 340, 0, 0, 300)


def test_usage_carried_in_a_span_event() -> None:
    row = one_row(
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"},
        events=[
            ("gen_ai.content.prompt", {"gen_ai.prompt": "hi"}),
            ("gen_ai.usage", {"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3}),
        ],
    )
    assert tokens(row)[:2] == (12, 3)
    assert dict(row["attributes"])["otelcost.usage_notes"] == "usage_from_event"


def test_usage_only_in_an_event_of_an_unmarked_span() -> None:
    row = one_row(
        {"custom.kind": "llm"},
        name="llm-call",
        events=[("gen_ai.client.inference.operation.details", {"gen_ai.usage.input_tokens": 7})],
    )
    assert tokens(row)[:2] == (7, 0)


@pytest.mark.parametrize(
    ("attrs", "tier"),
    [
        ({"openai.response.service_tier": "default", "openai.request.service_tier": "auto"}, "standard"),
        ({"openai.response.service_tier": "flex"}, "flex"),
        ({"gen_ai.openai.response.service_tier": "priority"}, "priority"),
        ({"gen_ai.openai.request.service_tier": "flex"}, "flex"),
        ({"anthropic.response.service_tier": "batch"}, "batch"),
        ({"anthropic.request.service_tier": "standard_only"}, "standard"),
        ({"gen_ai.request.service_tier": "scale"}, "standard"),
        ({"openai.response.service_tier": "weird"}, "standard"),
        ({}, "standard"),
    ],
)
def test_service_tier(attrs: dict[str, Any], tier: str) -> None:
    row = one_row({"gen_ai.operation.name": "chat", **attrs})
    assert row["service_tier"] == tier


def test_error_status_and_type() -> None:
    row = one_row(
        {"gen_ai.operation.name": "chat", "error.type": "RateLimitError"},
        status_code=2,
        status_message="429 Too Many Requests",
    )
    assert (row["status"], row["error_type"]) == ("error", "RateLimitError")
    row = one_row({"gen_ai.operation.name": "chat"}, status_code=2, status_message="boom")
    assert (row["status"], row["error_type"]) == ("error", "boom")
    row = one_row({"gen_ai.operation.name": "chat"}, status_code=1)
    assert (row["status"], row["error_type"]) == ("ok", None)

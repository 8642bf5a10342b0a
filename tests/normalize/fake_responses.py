"""OpenAI Responses API bodies and stream events for the loopback fake provider, and tool calls.

An agent loop needs a model that first asks for a tool and then answers: a request that offers
tools and carries no tool result yet is answered with a call of its first tool (no arguments);
any other request with the final text. Usage is the same as the chat completion's
(:data:`tests.normalize.fake_providers.OPENAI_COMPLETION`): 1200 input tokens of which 1024
cached, 300 output tokens of which 64 reasoning.
"""

from __future__ import annotations

from typing import Any, Final

CREATED: Final = 1_767_225_600
MODEL: Final = "gpt-4o-mini-2024-07-18"
RESPONSES_USAGE: Final[dict[str, Any]] = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 1500,
}


def wants_tool_call_chat(request: dict[str, Any]) -> str | None:
    """The tool a chat completion request should be answered with a call of, if any."""
    tools = request.get("tools") or []
    messages = request.get("messages") or []
    if not tools or any(m.get("role") == "tool" for m in messages):
        return None
    return str(tools[0]["function"]["name"])


def chat_tool_call(completion: dict[str, Any], tool: str) -> dict[str, Any]:
    """``completion`` answering with a call of ``tool`` instead of text."""
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": f"call_{completion['id'][-6:]}",
                "type": "function",
                "function": {"name": tool, "arguments": "{}"},
            }
        ],
    }
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
    return {**completion, "choices": [choice]}


def _tool_of(request: dict[str, Any]) -> str | None:
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]
    items = request.get("input")
    answered = isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
    )
    return None if not tools or answered else str(tools[0]["name"])


def response_body(request: dict[str, Any], response_id: str) -> dict[str, Any]:
    """A completed Responses API response to ``request``."""
    tool = _tool_of(request)
    suffix = response_id[-6:]
    if tool is not None:
        item: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{suffix}",
            "call_id": f"call_{suffix}",
            "name": tool,
            "arguments": "{}",
            "status": "completed",
        }
    else:
        item = {
            "type": "message",
            "id": f"msg_{suffix}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
        }
    return {
        "id": response_id,
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "model": MODEL,
        "output": [item],
        "usage": RESPONSES_USAGE,
        "parallel_tool_calls": True,
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "text": {"format": {"type": "text"}},
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_output_tokens": None,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "truncation": "disabled",
        "user": None,
    }


def response_stream_events(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events that stream ``body``; usage comes in ``response.completed``."""
    item = body["output"][0]
    started = {**body, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    if item["type"] == "message":
        empty = {**item, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        text = item["content"][0]["text"]
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events += [
            {"type": "response.output_item.added", "output_index": 0, "item": empty},
            {"type": "response.content_part.added", **where, "part": part},
            {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []},
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": item["content"][0]},
        ]
    else:
        pending = {**item, "status": "in_progress", "arguments": ""}
        where = {"item_id": item["id"], "output_index": 0}
        events += [
            {"type": "response.output_item.added", "output_index": 0, "item": pending},
            {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]},
            {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]},
        ]
    events += [
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": body},
    ]
    return [(event["type"], {**event, "sequence_number": n}) for n, event in enumerate(events)]

"""A loopback stand-in for the OpenAI and Anthropic HTTP APIs, answering with realistic usage.

Endpoints: OpenAI ``/v1/chat/completions`` and ``/v1/responses`` (the Responses API, streamed
with ``stream: true``; both answer a request that offers tools with a call of the first one, then
with text: ``fake_responses.py``), Anthropic ``/v1/messages`` (streamed too).

The OpenAI chat completion reports 1200 prompt tokens of which 1024 were cached, and 300
completion tokens of which 64 were reasoning (OpenAI semantics: the parts are inside the totals).
The Anthropic message reports 200 uncached input tokens, 1000 read from the cache, 500 written to
it and 80 output tokens (Anthropic semantics: input_tokens excludes the cache). Every response
has an id of its own (``msg_fake_000001``, ...), as a real provider's has; ``stream: true``
answers with server-sent events.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.normalize.fake_responses import (
    chat_tool_call,
    response_body,
    response_stream_events,
    wants_tool_call_chat,
)

OPENAI_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-fake-0001",
    "object": "chat.completion",
    "created": 1_767_225_600,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "flex",
    "system_fingerprint": "fp_fake",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 64,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_fake_0001",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 200,
        "cache_creation_input_tokens": 500,
        "cache_read_input_tokens": 1000,
        "output_tokens": 80,
        "service_tier": "standard",
    },
}


_response_numbers = itertools.count(1)


def _numbered(body: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``body`` with an id of its own: every response of a real provider has a distinct id."""
    return {**body, "id": f"{prefix}{next(_response_numbers):06d}"}


def anthropic_stream_events(message_id: str = ANTHROPIC_MESSAGE["id"]) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of :data:`ANTHROPIC_MESSAGE` streamed (``stream: true``): usage
    arrives in ``message_start`` (input and cache) and ``message_delta`` (output)."""
    message = {**ANTHROPIC_MESSAGE, "id": message_id, "content": [], "stop_reason": None}
    message["usage"] = {**ANTHROPIC_MESSAGE["usage"], "output_tokens": 1}
    return [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello!"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": ANTHROPIC_MESSAGE["usage"]["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        streamed = bool(request.get("stream"))
        if self.path.endswith("/chat/completions"):
            body = _numbered(OPENAI_COMPLETION, "chatcmpl-fake-")
            tool = wants_tool_call_chat(request)
            if tool is not None:
                body = chat_tool_call(body, tool)
        elif self.path.endswith("/responses"):
            body = response_body(request, _numbered({}, "resp_fake_")["id"])
            if streamed:
                self._stream(response_stream_events(body))
                return
        elif self.path.endswith("/messages"):
            body = _numbered(ANTHROPIC_MESSAGE, "msg_fake_")
            if streamed:
                self._stream(anthropic_stream_events(body["id"]))
                return
        else:
            self.send_error(404)
            return
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        payload = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def fake_provider() -> Iterator[str]:
    """Serve on 127.0.0.1 on a free port; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""The most a call can cost before it runs: an upper bound priced with the catalog.

Reservations (``otelcost.policy.reservations``) hold an estimate per call against the headroom a
budget has left, so the estimate should be an upper bound, or the budget can overshoot by the
difference (docs/budgets.md, "How far a budget can overshoot"). It is built from

* **input tokens**: the prompt's token count when the caller has one, otherwise the number of
  UTF-8 bytes of its text plus ``tokens_per_message`` per message (byte-level BPE tokenizers
  never produce more tokens than bytes; the per-message term covers role and framing tokens);
* **output tokens**: the request's max output tokens (``max_tokens``,
  ``max_completion_tokens``, ``max_output_tokens``) times ``n``, or ``default_max_output_tokens``
  when the request sets none (then the bound is only as good as that default);
* **rates**: the catalog version in force, the *highest* rate among the price set's variants
  (long context, time of day) for input (uncached input and cache writes) and for output
  (output and reasoning), so no variant the call might fall into costs more.

An unpriced model has ``cost_usd=None``: its tokens still count against token budgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from otelcost.money import pico_to_decimal
from otelcost.policy.reservations import Estimate
from otelcost.pricing import Catalog, PricingConfig

__all__ = ["CatalogEstimator", "prompt_token_bound"]


def prompt_token_bound(messages: Iterable[object], tokens_per_message: int = 8) -> int:
    """UTF-8 bytes of every text in ``messages`` (chat messages, strings, content parts) plus
    ``tokens_per_message`` each: at least the prompt's token count for byte-level BPE."""
    total = 0
    for message in messages:
        total += tokens_per_message + _text_bytes(message)
    return total


def _text_bytes(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, Mapping):
        return sum(_text_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_text_bytes(v) for v in value)
    return 0


class CatalogEstimator:
    """Upper-bound estimates of a call's spend from the price catalog."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        default_max_output_tokens: int = 4096,
        tokens_per_message: int = 8,
    ) -> None:
        self.catalog = catalog if catalog is not None else Catalog.load(PricingConfig())
        self.default_max_output_tokens = default_max_output_tokens
        self.tokens_per_message = tokens_per_message

    def estimate(
        self,
        *,
        provider: str | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        when: datetime | None = None,
    ) -> Estimate:
        """Price ``input_tokens`` and ``output_tokens`` at the highest applicable rates."""
        cost = None
        entry = self.catalog.resolve(provider, model)
        version = entry.version_at(when or datetime.now(UTC)) if entry is not None else None
        if version is not None:
            rate_sets = [rates for _, rates in version.prices.variants()]
            input_rate = max(max(r.input, r.cache_write, r.cache_write_1h) for r in rate_sets)
            output_rate = max(max(r.output, r.reasoning) for r in rate_sets)
            cost = pico_to_decimal(input_tokens * input_rate + output_tokens * output_rate)
        return Estimate(cost_usd=cost, input_tokens=input_tokens, output_tokens=output_tokens)

    def for_request(
        self,
        request: Mapping[str, object],
        *,
        provider: str | None = None,
        prompt_tokens: int | None = None,
    ) -> Estimate:
        """The estimate of an OpenAI-style request body (``model``, ``messages`` or ``input``,
        ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``, ``n``). A model
        written ``provider/model`` (LiteLLM's spelling) gives the provider."""
        model = request.get("model")
        name = model if isinstance(model, str) else None
        if name and provider is None and "/" in name:
            provider, _, name = name.partition("/")
        if prompt_tokens is None:
            messages = request.get("messages", request.get("input", request.get("prompt", ())))
            if isinstance(messages, str):
                messages = [messages]
            prompt_tokens = prompt_token_bound(
                messages if isinstance(messages, list | tuple) else (), self.tokens_per_message
            )
        max_out = next(
            (
                value
                for key in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                if isinstance(value := request.get(key), int) and not isinstance(value, bool)
            ),
            self.default_max_output_tokens,
        )
        choices = request.get("n")
        count = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 0 else 1
        return self.estimate(
            provider=provider, model=name, input_tokens=prompt_tokens, output_tokens=max_out * count
        )

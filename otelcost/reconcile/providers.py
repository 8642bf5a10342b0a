"""The providers reconciliation knows: the command's name, the lake's provider, the parser.

``openai`` and ``anthropic`` are the model makers' own APIs; ``bedrock`` and ``azure-openai``
are hosts, whose calls the lake records under the host (``aws.bedrock``, ``azure.ai.openai``:
the host sends the bill, docs/pricing.md), whatever the model's maker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otelcost.reconcile.anthropic import read_anthropic
from otelcost.reconcile.azure import read_azure
from otelcost.reconcile.bedrock import read_bedrock
from otelcost.reconcile.errors import InvoiceFormatError, ReconcileError
from otelcost.reconcile.invoice import InvoiceLine, ParsedFile
from otelcost.reconcile.openai import read_openai

__all__ = ["PROVIDERS", "Provider", "provider", "read_invoice"]


def _listed(read: Callable[[Path, str], list[InvoiceLine]]) -> Callable[[Path, str], ParsedFile]:
    """A parser that leaves nothing out (OpenAI, Anthropic) as one that says so."""
    return lambda path, text: ParsedFile(lines=read(path, text))


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider as reconciliation sees it."""

    name: str
    lake_provider: str
    """The lake's ``provider`` value of its calls (the OpenTelemetry ``gen_ai.provider.name``)."""
    read: Callable[[Path, str], ParsedFile]
    files: str
    """What the export is, for help and error messages."""


PROVIDERS: Final[dict[str, Provider]] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "openai",
            _listed(read_openai),
            "Costs API / completions usage API JSON, or the usage dashboard's CSV",
        ),
        Provider(
            "anthropic",
            "anthropic",
            _listed(read_anthropic),
            "Admin API cost report / messages usage report JSON, or CSV of the same fields",
        ),
        Provider("bedrock", "aws.bedrock", read_bedrock, "AWS CUR 2.0, legacy CUR or FOCUS CSV"),
        Provider("azure-openai", "azure.ai.openai", read_azure, "Azure Cost Management export CSV"),
    )
}


def provider(name: str) -> Provider:
    """The provider ``name``; ReconcileError naming the ones there are."""
    found = PROVIDERS.get(name.strip().lower())
    if found is None:
        raise ReconcileError(f"no provider {name!r}; reconciliation knows: {', '.join(PROVIDERS)}")
    return found


def read_invoice(chosen: Provider, path: Path) -> ParsedFile:
    """Parse one export file of ``chosen``; InvoiceFormatError names the place of a problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvoiceFormatError(path, "", "no such file") from None
    except UnicodeDecodeError as exc:
        raise InvoiceFormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    except OSError as exc:
        raise InvoiceFormatError(path, "", f"cannot be read: {exc.strerror}") from None
    if not text.strip():
        raise InvoiceFormatError(path, "", "the file is empty")
    return chosen.read(path, text)

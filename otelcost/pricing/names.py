"""How a model name seen on a span is turned into the names a catalog is searched for.

Spans carry model names the way each SDK, gateway and cloud spells them: ``gpt-4o-2024-08-06``,
``openai/gpt-4o`` (LiteLLM and other routers), ``models/gemini-2.5-pro`` (the Gemini REST
API), ``projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro`` (Vertex AI),
``claude-sonnet-4-5@20250929`` (Claude on Vertex AI), ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``
(an AWS Bedrock cross-region inference profile) or a whole Bedrock ARN. :func:`candidates`
returns, most specific first, the spellings to try: the name as sent (lower-cased), then with
each of these removed or rewritten:

1. everything up to the last ``/`` (route prefixes, resource paths, ARNs);
2. ``@`` becomes ``-`` (Vertex AI's snapshot separator);
3. a Bedrock geography prefix (``us.``, ``eu.``, ``apac.``, ``jp.``, ``au.``, ``ca.``,
   ``us-gov.``, ``global.``) in front of a ``vendor.model`` id.

The catalog tries every candidate against exact aliases first and glob patterns second, so an
entry can still price a prefixed spelling apart (Bedrock's regional endpoints cost more than its
global one) simply by listing it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["candidates", "normalize"]

_GEO_PREFIX: Final = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.(?=[a-z0-9-]+\.)")


def normalize(name: str) -> str:
    """The canonical spelling of a model name: trimmed, lower case."""
    return name.strip().lower()


def candidates(name: str) -> tuple[str, ...]:
    """Spellings of ``name`` to look up, most specific first, without duplicates."""
    spelled = normalize(name)
    if not spelled:
        return ()
    found = [spelled]
    tail = spelled.rsplit("/", 1)[-1]
    for candidate in (tail, tail.replace("@", "-"), _GEO_PREFIX.sub("", tail)):
        if candidate and candidate not in found:
            found.append(candidate)
    unprefixed = _GEO_PREFIX.sub("", tail.replace("@", "-"))
    if unprefixed and unprefixed not in found:
        found.append(unprefixed)
    return tuple(found)

"""The gateway-side client: keep the decisions locally, answer checks in microseconds.

::

    from otelcost.policy.client import PolicyClient

    client = PolicyClient("http://otelcost:4320", fail_mode="open")
    client.start()                       # background long poll of GET /v1/decisions
    result = client.check({"team": "ml", "user_id": "u-17"})
    if not result.allowed:
        return 429, {"Retry-After": str(result.retry_after or 60)}, result.reason

A background thread long-polls ``/v1/decisions?wait=30s`` with ``If-None-Match`` and swaps in
each new snapshot; :meth:`PolicyClient.check` answers from the snapshot in memory (dictionary
lookups, a few microseconds) and never does I/O. Decisions whose ``retry_at`` has passed are
ignored, so a calendar window that rolls over stops blocking on time even if the endpoint is
unreachable at that moment.

When the endpoint cannot be reached the client keeps serving its last snapshot. Only when it
has none (never reached since start), or when the last successful poll is older than
``max_staleness`` (if set), does ``fail_mode`` decide: ``"open"`` allows every call,
``"closed"`` refuses every call. Failed polls back off exponentially (0.5 s doubling to 30 s).

A snapshot the server marks ``stale`` (its shared budget store, Redis, cannot be reached, so its
totals hold only that process's calls since) is used as it is unless ``when_stale="fail"``,
which hands those checks to ``fail_mode`` as well (docs/gateway-integration.md).

The HTTP transport is injectable (anything with the :class:`Transport` ``get`` method); the
default uses ``urllib`` and the module needs nothing but the standard library (protobuf only if
``protobuf=True``).
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from otelcost.policy.decisions import Action, CheckResult, Snapshot
from otelcost.policy.encoding import PROTOBUF_CONTENT_TYPE, snapshot_from_json, snapshot_from_protobuf

__all__ = ["HttpResponse", "PolicyClient", "Transport", "UrllibTransport"]

log = logging.getLogger(__name__)

_MIN_BACKOFF: Final = 0.5
_MAX_BACKOFF: Final = 30.0
_TIMEOUT_MARGIN: Final = 10.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        """GET ``url``; any HTTP status is a response, only transport failures raise OSError."""


class UrllibTransport:
    """The default transport (standard library only)."""

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        request = urllib.request.Request(url, headers=dict(headers), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return HttpResponse(int(response.status), dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:  # 304 and errors come as HTTPError
            with exc:
                return HttpResponse(exc.code, dict(exc.headers or {}), exc.read() if exc.fp else b"")
        except http.client.HTTPException as exc:  # a connection cut mid-answer
            raise OSError(f"GET {url}: {exc!r}") from exc


class PolicyClient:
    """Keeps the policy endpoint's decisions and answers checks locally.

    ``url`` is the API base (``http://host:4320``). ``wait`` is the long-poll time asked of the
    server; ``max_staleness`` (seconds, None = never) is how long a snapshot is trusted after the
    last successful poll; ``when_stale`` what a snapshot the server marks stale is worth.
    """

    def __init__(
        self,
        url: str,
        *,
        fail_mode: Literal["open", "closed"] = "open",
        wait: float = 30.0,
        max_staleness: float | None = None,
        protobuf: bool = False,
        transport: Transport | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        headers: Mapping[str, str] | None = None,
        when_stale: Literal["decide", "fail"] = "decide",
    ) -> None:
        if fail_mode not in ("open", "closed"):
            raise ValueError(f"fail_mode must be 'open' or 'closed', got {fail_mode!r}")
        if when_stale not in ("decide", "fail"):
            raise ValueError(f"when_stale must be 'decide' or 'fail', got {when_stale!r}")
        self.when_stale = when_stale
        self.url = url.rstrip("/") + "/v1/decisions"
        self.fail_mode = fail_mode
        self.wait = wait
        self.max_staleness = max_staleness
        self.protobuf = protobuf
        self._transport = transport or UrllibTransport()
        self._clock_ns = clock_ns
        self._headers = dict(headers or {})
        self._snapshot: Snapshot | None = None
        self._etag: str | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_success_ns: int | None = None
        self.last_error: str | None = None
        self.polls = 0
        self.failures = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PolicyClient:
        """Start the background long poll (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="otelcost-policy-client", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop polling. A poll in flight ends at its timeout at the latest (the thread is a daemon)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=0.5)

    def __enter__(self) -> PolicyClient:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_for_version(self, version: int = 1, timeout: float = 10.0) -> bool:
        """Block until a snapshot with at least ``version`` is held (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._snapshot is None or self._snapshot.version < version:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    # -- polling ---------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self, wait: float = 0.0) -> bool:
        """One request (long-polling up to ``wait`` seconds); True when a new snapshot came.

        Raises OSError when the endpoint cannot be reached or answers with an error.
        """
        headers = dict(self._headers)
        if self.protobuf:
            headers["Accept"] = PROTOBUF_CONTENT_TYPE
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        url = self.url if wait <= 0 or self._etag is None else f"{self.url}?wait={wait:g}s"
        self.polls += 1
        response = self._transport.get(url, headers, wait + _TIMEOUT_MARGIN)
        if response.status == 304:
            self.last_success_ns = self._clock_ns()
            return False
        if response.status != 200:
            raise OSError(f"GET {self.url} answered {response.status}")
        try:
            snapshot = (
                snapshot_from_protobuf(response.body) if self.protobuf else snapshot_from_json(response.body)
            )
        except ValueError as exc:
            raise OSError(f"GET {self.url}: {exc}") from exc
        etag = next((v for k, v in response.headers.items() if k.lower() == "etag"), None)
        with self._changed:
            self._snapshot = snapshot
            self._etag = etag
            self.last_success_ns = self._clock_ns()
            self.last_error = None
            self._changed.notify_all()
        return True

    def _run(self) -> None:
        backoff = _MIN_BACKOFF
        while not self._stop.is_set():
            try:
                self.refresh(self.wait)
                backoff = _MIN_BACKOFF
            except Exception as exc:  # whatever happens, keep serving and keep trying
                self.failures += 1
                self.last_error = str(exc)
                log.debug("policy endpoint poll failed: %s (retry in %.1fs)", exc, backoff)
                if self._stop.wait(backoff):
                    return
                backoff = min(_MAX_BACKOFF, backoff * 2)

    # -- answers ---------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """No snapshot, or (with ``max_staleness``) none confirmed recently enough."""
        if self._snapshot is None or self.last_success_ns is None:
            return True
        if self.max_staleness is None:
            return False
        return self._clock_ns() - self.last_success_ns > self.max_staleness * 1e9

    def check(self, dimensions: Mapping[str, str] | None = None, **more: str) -> CheckResult:
        """May a call with these dimensions go ahead? Answered from memory, never blocks."""
        snapshot = self._snapshot
        if snapshot is None or self.stale:
            return self._fail_result("no decisions yet" if snapshot is None else "decisions are stale")
        if snapshot.stale and self.when_stale == "fail":
            return self._fail_result("the server's budget totals are stale (its shared store is unreachable)")
        merged = {**dimensions, **more} if dimensions else more
        return snapshot.check(merged, self._clock_ns())

    def _fail_result(self, why: str) -> CheckResult:
        version = self._snapshot.version if self._snapshot is not None else 0
        detail = f" ({self.last_error})" if self.last_error else ""
        if self.fail_mode == "open":
            return CheckResult(Action.ALLOW, None, (), version, f"{why}{detail}; failing open")
        return CheckResult(Action.BLOCK, None, (), version, f"{why}{detail}; failing closed")

"""Threshold alerts: a JSON webhook per crossing, delivered off the ingest path with retries.

A crossing becomes one alert, identified by ``alert_id`` (a hash of budget, instance, window
and threshold), so it is sent once per crossing per window however often the evaluator sees
the total go past it; the journal (``alerts.jsonl``, see ``store.py``) keeps that true across
restarts. The POST body is JSON with a Slack-compatible ``text`` (so a Slack incoming webhook
shows it as is) and every field a program needs::

    {"text": ":warning: otelcost budget team-monthly (team=ml) passed 80%: 4012.5 of 5000 USD ...",
     "alert_id": "9f2c...", "budget": "team-monthly", "scope": {"team": "ml"},
     "threshold": "0.8", "action": "notify", "metric": "cost_usd", "spent": "4012.5",
     "limit": "5000", "percent": 80.25, "window": "month", "window_start": "...",
     "window_end": "...", "crossed_at": "...", "unpriced_calls": 0}

The request also carries ``X-Otelcost-Alert-Id`` so a receiver can drop a redelivery.

Delivery runs in one background thread. ``submit`` never blocks: alerts wait in a bounded
queue (``budgeting.alerts.queue_size``; when full, the oldest waiting alert is dropped and
counted). A failed attempt (connection error, timeout, 408, 429 or 5xx) is retried after
``initial_backoff`` doubling up to ``max_backoff``, with jitter, up to ``max_attempts``; other
4xx answers are final. A webhook that is down therefore never slows ingest, and never causes a
storm: at most ``max_attempts`` requests per crossing.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from otelcost.budgets.config import AlertsConfig
from otelcost.budgets.snapshot import Crossing
from otelcost.budgets.store import AlertJournal
from otelcost.money import format_amount
from otelcost.policy.decisions import format_scope
from otelcost.timefmt import format_time, parse_time

__all__ = ["AlertDispatcher", "Alerts", "alert_payload", "alert_text"]

log = logging.getLogger(__name__)

_RETRYABLE: Final = frozenset({408, 425, 429})
_EMOJI: Final = {"notify": ":warning:", "throttle": ":hourglass:", "block": ":no_entry:"}
_UNITS: Final = {"cost_usd": "USD", "effective_cost_usd": "USD (effective)"}


def alert_text(crossing: Crossing) -> str:
    rule = crossing.rule
    unit = _UNITS.get(rule.metric, rule.metric.replace("_", " "))
    percent = crossing.threshold.at * 100
    text = (
        f"{_EMOJI.get(crossing.action.value, '')} otelcost budget *{rule.name}* "
        f"({format_scope(crossing.scope)}) passed {format_amount(percent)}%: "
        f"{format_amount(crossing.spent)} of {format_amount(crossing.limit)} {unit} "
        f"({rule.window.label}). Action: {crossing.action.value}."
    ).lstrip()
    if crossing.window_end_ns is not None:
        text += f" Window ends {format_time(crossing.window_end_ns)}."
    if crossing.unpriced_calls:
        text += f" {crossing.unpriced_calls} call(s) had no price and are not in the cost."
    return text


def alert_payload(crossing: Crossing) -> dict[str, Any]:
    limit = crossing.limit
    return {
        "text": alert_text(crossing),
        "alert_id": crossing.alert_id,
        "budget": crossing.rule.name,
        "scope": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(crossing.scope.items())},
        "threshold": format_amount(crossing.threshold.at),
        "action": crossing.action.value,
        "metric": crossing.rule.metric,
        "spent": format_amount(crossing.spent),
        "limit": format_amount(limit),
        "percent": float(round(crossing.spent * 100 / limit, 2)) if limit else None,
        "window": crossing.rule.window.label,
        "window_id": crossing.window_id,
        "window_start": format_time(crossing.window_start_ns),
        "window_end": format_time(crossing.window_end_ns),
        "crossed_at": format_time(crossing.crossed_at_ns),
        "unpriced_calls": crossing.unpriced_calls,
        "webhook_url": crossing.rule.config.webhook_url,
    }


@dataclass(order=True)
class _Job:
    due: float
    sequence: int
    payload: dict[str, Any]
    attempt: int = 0


Outcome = Callable[[str, str], None]
"""Called with (alert_id, "delivered" | "failed") when an alert is done with."""


class AlertDispatcher:
    """Delivers alert payloads to webhooks from a background thread, with bounded retries.

    Counters: ``delivered``, ``failed`` (given up), ``attempts``, ``dropped`` (queue full),
    ``skipped`` (no webhook configured; the alert is logged instead).
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        on_done: Outcome | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._on_done = on_done
        self._monotonic = monotonic
        self._jobs: list[_Job] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.delivered = self.failed = self.attempts = self.dropped = self.skipped = 0

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._jobs)

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="otelcost-alerts", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop; alerts still waiting stay in the journal and are retried after a restart."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, payload: Mapping[str, Any]) -> None:
        """Queue an alert for delivery; never blocks."""
        url = payload.get("webhook_url") or self.config.webhook_url
        if not url:
            self.skipped += 1
            log.info("budget alert (no webhook configured): %s", payload.get("text"))
            if self._on_done is not None:
                self._on_done(str(payload["alert_id"]), "delivered")
            return
        with self._condition:
            if len(self._jobs) >= self.config.queue_size:
                oldest = min(self._jobs, key=lambda job: job.sequence)
                self._jobs.remove(oldest)
                heapq.heapify(self._jobs)
                self.dropped += 1
                log.warning("alert queue full: dropped alert %s", oldest.payload.get("alert_id"))
            heapq.heappush(self._jobs, _Job(self._monotonic(), next(self._sequence), dict(payload)))
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._jobs or self._jobs[0].due > self._monotonic()):
                    wait = None if not self._jobs else max(0.0, self._jobs[0].due - self._monotonic())
                    self._condition.wait(wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
            self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        payload = job.payload
        alert_id = str(payload["alert_id"])
        url = str(payload.get("webhook_url") or self.config.webhook_url)
        job.attempt += 1
        self.attempts += 1
        status, error = self._post(url, payload)
        if status is not None and 200 <= status < 300:
            self.delivered += 1
            self._finish(alert_id, "delivered")
            return
        final = status is not None and 400 <= status < 500 and status not in _RETRYABLE
        if final or job.attempt >= self.config.max_attempts:
            self.failed += 1
            log.warning("giving up on budget alert %s after %d attempt(s): %s", alert_id, job.attempt, error)
            self._finish(alert_id, "failed")
            return
        backoff = min(
            self.config.max_backoff.total_seconds(),
            self.config.initial_backoff.total_seconds() * 2 ** (job.attempt - 1),
        )
        job.due = self._monotonic() + backoff * random.uniform(0.8, 1.2)
        log.info(
            "budget alert %s: attempt %d failed (%s); retry in %.1fs", alert_id, job.attempt, error, backoff
        )
        with self._condition:
            heapq.heappush(self._jobs, job)
            self._condition.notify()

    def _finish(self, alert_id: str, outcome: str) -> None:
        if self._on_done is not None:
            try:
                self._on_done(alert_id, outcome)
            except Exception:  # the journal logs its own I/O errors; never kill the thread
                log.exception("recording the outcome of alert %s failed", alert_id)

    def _post(self, url: str, payload: Mapping[str, Any]) -> tuple[int | None, str]:
        body = {k: v for k, v in payload.items() if k != "webhook_url"}
        headers = {"Content-Type": "application/json", "X-Otelcost-Alert-Id": str(payload["alert_id"])}
        headers |= {name: secret.get_secret_value() for name, secret in self.config.headers.items()}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout.total_seconds()) as response:
                response.read()
                return int(response.status), f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return None, str(getattr(exc, "reason", exc))


class Alerts:
    """Crossings become alerts once each: recorded in the journal, then queued for delivery.

    ``journal`` None: nothing is remembered across restarts (tests, no state directory).
    """

    def __init__(self, config: AlertsConfig, journal: AlertJournal | None) -> None:
        self._journal = journal
        self._alerted: set[str] = set()
        self.dispatcher = AlertDispatcher(config, on_done=self._done)

    def resume(self, now_ns: int) -> None:
        """Remember what the journal says was alerted; queue what was not delivered."""
        if self._journal is None:
            return

        def still_open(payload: dict[str, Any]) -> bool:
            end = parse_time(payload.get("window_end"))
            if end is not None:
                return end > now_ns
            window_id = payload.get("window_id")  # a window that slides has no end: keep two days
            return isinstance(window_id, int) and window_id > now_ns - 2 * 86_400 * 10**9

        alerted, pending = self._journal.load(keep_if=still_open)
        self._alerted = alerted
        for payload in pending:
            self.dispatcher.submit(payload)

    def send(self, crossings: list[Crossing]) -> None:
        """Alert each crossing not alerted before."""
        for crossing in crossings:
            if crossing.alert_id in self._alerted:
                continue
            self._alerted.add(crossing.alert_id)
            payload = alert_payload(crossing)
            if self._journal is not None:
                self._journal.record("crossed", crossing.alert_id, payload)
            self.dispatcher.submit(payload)

    def _done(self, alert_id: str, outcome: str) -> None:
        if self._journal is not None:
            self._journal.record(outcome, alert_id)

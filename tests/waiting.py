"""Waiting for something another thread or process does, in tests.

One helper instead of hand-written deadline loops: a timeout says what was awaited, and the
condition's value is returned, so a test can wait for a value (a port, a response) and use it.
A sleep left in a test is one where time passing is the point (letting time pass to show that
something does NOT happen, simulating a slow call, spacing a load), and a comment says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 5.0, poll: float = 0.01, *, what: str = "the condition"
) -> T:
    """Call ``condition()`` every ``poll`` seconds until it returns a truthy value; return that value.

    Raises AssertionError naming ``what`` when ``timeout`` seconds pass first. The condition is
    called once more after the deadline, so a slow poll never turns a success into a failure.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(what, timeout, value))
        time.sleep(poll)
    return value


async def wait_until_async(
    condition: Callable[[], T], timeout: float = 5.0, poll: float = 0.01, *, what: str = "the condition"
) -> T:
    """:func:`wait_until` inside a coroutine: it sleeps with ``asyncio.sleep``, so the loop runs on.

    ``poll=0`` yields to the event loop once between calls: the tasks that are ready run, then the
    condition is asked again.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(what, timeout, value))
        await asyncio.sleep(poll)
    return value


def _timed_out(what: str, timeout: float, last: object) -> str:
    return f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})"

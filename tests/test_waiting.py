"""The test wait helpers: they return what they waited for and say what it was when they time out."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import wait_until, wait_until_async


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([0, None, "", 42, 43])
    assert wait_until(lambda: next(answers), timeout=5, poll=0) == 42


def test_wait_until_names_what_it_waited_for_when_it_times_out() -> None:
    calls = itertools.count()
    with pytest.raises(AssertionError, match=r"0\.05 s waiting for the port to open \(last value: 0\)"):
        wait_until(lambda: 0 * next(calls), timeout=0.05, what="the port to open")
    assert next(calls) > 1  # it polled, then gave up


def test_wait_until_async_lets_the_event_loop_run() -> None:
    async def run() -> str:
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.02, done.set)
        await wait_until_async(done.is_set, timeout=5)
        return await wait_until_async(lambda: "set" if done.is_set() else "", poll=0)

    assert asyncio.run(run()) == "set"
    with pytest.raises(AssertionError, match="waiting for nothing"):
        asyncio.run(wait_until_async(lambda: False, timeout=0.02, what="nothing"))

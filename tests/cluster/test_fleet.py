"""The test fleet's wait: a waiter told to stop stops, whenever the stop comes."""

from __future__ import annotations

import asyncio

import pytest

from tests.cluster.fleet import Fleet


@pytest.mark.parametrize("yields", range(8))
async def test_a_wait_cancelled_as_its_condition_comes_true_is_cancelled(yields: int) -> None:
    """On Python 3.11, asyncio.wait_for returned instead: the Traffic loop then never ended.

    The condition comes true and the waiter is cancelled ``yields`` loop steps apart, so one
    of the cases lands between the inner wait finishing and the outer one resuming.
    """
    fleet = Fleet()
    met = False
    waiter = asyncio.create_task(fleet.until(lambda: met, 60, "the condition"))
    for _ in range(3):  # the waiter is now waiting on the condition
        await asyncio.sleep(0)
    async with fleet.changed:
        met = True
        fleet.changed.notify_all()
    for _ in range(yields):
        await asyncio.sleep(0)
    accepted = waiter.cancel()  # False only when the wait had already returned
    (result,) = await asyncio.gather(waiter, return_exceptions=True)
    assert not accepted or isinstance(result, asyncio.CancelledError), (yields, result)

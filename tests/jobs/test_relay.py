"""The relay: subscribers read the log at their own pace; one heartbeat timer for all."""

from __future__ import annotations

import asyncio

from feature_planner.jobs.relay import EventLog, Heartbeat, Subscriber
from feature_planner.sse import PING


async def test_a_slow_subscriber_gets_everything_it_missed_in_one_chunk() -> None:
    log = EventLog()
    subscriber = Subscriber(log, 0, first=b"hello ")
    for n in range(1, 4):
        log.append(f"e{n} ".encode())
    assert await subscriber.next_chunk() == b"hello e1 e2 e3 "
    log.append(b"e4 ")
    log.finish()
    assert await subscriber.next_chunk() == b"e4 "
    assert await subscriber.next_chunk() is None


async def test_a_subscriber_resumes_after_an_event_id() -> None:
    log = EventLog()
    for n in range(1, 6):
        log.append(f"e{n} ".encode())
    log.finish()
    subscriber = Subscriber(log, 3)
    assert await subscriber.next_chunk() == b"e4 e5 "
    assert await subscriber.next_chunk() is None


async def test_an_append_wakes_every_waiting_subscriber() -> None:
    log = EventLog()
    subscribers = [Subscriber(log, 0) for _ in range(50)]
    reads = [asyncio.ensure_future(s.next_chunk()) for s in subscribers]
    await asyncio.sleep(0)
    assert not any(read.done() for read in reads)
    log.append(b"x")
    results = await asyncio.gather(*reads)
    assert results == [b"x"] * 50


async def test_close_ends_a_waiting_read_and_calls_back_once() -> None:
    log = EventLog()
    closed: list[Subscriber] = []
    subscriber = Subscriber(log, 0, on_close=closed.append)
    read = asyncio.ensure_future(subscriber.next_chunk())
    await asyncio.sleep(0)
    subscriber.close()
    subscriber.close()
    assert await read is None
    assert closed == [subscriber]


async def test_heartbeat_pings_only_quiet_subscribers() -> None:
    quiet_log, busy_log = EventLog(), EventLog()
    quiet, busy = Subscriber(quiet_log, 0), Subscriber(busy_log, 0)
    heartbeat = Heartbeat(0.1)
    heartbeat.add(quiet)
    heartbeat.add(busy)
    heartbeat.start()
    try:
        quiet_read = asyncio.ensure_future(quiet.next_chunk())
        for n in range(8):
            busy_log.append(b"%d" % n)
            assert await busy.next_chunk() == b"%d" % n
            await asyncio.sleep(0.025)
        assert await asyncio.wait_for(quiet_read, 1) == PING
    finally:
        await heartbeat.stop()

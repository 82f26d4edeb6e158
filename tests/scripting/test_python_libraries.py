"""Issue 17: libraries from PyPI that rely on Lua scripts, unchanged — the `limits` package's Redis rate
limiters (moving window, sliding window counter, fixed window) and rq (enqueue, then a worker in burst
mode runs the job)."""
import time

import pytest
import redis
from limits import parse, storage, strategies
from rq import Queue, Worker


@pytest.fixture
def limiter_storage(r, nova_server):
    store = storage.RedisStorage(f"redis://127.0.0.1:{nova_server.port}")
    assert store.check()
    yield store
    store.reset()


@pytest.mark.parametrize("strategy", [
    strategies.MovingWindowRateLimiter, strategies.SlidingWindowCounterRateLimiter, strategies.FixedWindowRateLimiter,
])
def test_limits_rate_limiters(limiter_storage, strategy):
    limiter = strategy(limiter_storage)
    five_per_minute = parse("5/minute")
    assert [limiter.hit(five_per_minute, "user", "search") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.hit(five_per_minute, "another-user", "search")
    assert not limiter.test(five_per_minute, "user", "search")
    before = time.time()
    stats = limiter.get_window_stats(five_per_minute, "user", "search")
    # The sliding window counter's reset is `now + PTTL % window`: when every call ran within the
    # millisecond of the first SET PX (PTTL still the full 120000 ms, as on redis-server) that is `now`
    # itself, so the reset is compared with the time before the call, not after it.
    assert stats.remaining == 0 and stats.reset_time >= before
    limiter.clear(five_per_minute, "user", "search")
    assert limiter.hit(five_per_minute, "user", "search")


def test_limits_moving_window_lets_hits_through_as_the_window_moves(limiter_storage):
    limiter = strategies.MovingWindowRateLimiter(limiter_storage)
    two_per_second = parse("2/second")
    assert limiter.hit(two_per_second, "k") and limiter.hit(two_per_second, "k")
    assert not limiter.hit(two_per_second, "k")
    time.sleep(1.1)
    assert limiter.hit(two_per_second, "k")
    assert limiter.hit(two_per_second, "k", cost=1)
    assert not limiter.hit(two_per_second, "k")


def test_rq_enqueue_and_burst_worker(r, nova_server):
    connection = redis.Redis(port=nova_server.port)
    queue = Queue("scripts", connection=connection)
    jobs = [queue.enqueue("math.pow", 2, n) for n in range(5)]
    failing = queue.enqueue("math.sqrt", "not a number")
    assert queue.count == 6
    worker = Worker([queue], connection=connection, name="nova-test-worker")
    assert worker.work(burst=True)
    for n, job in enumerate(jobs):
        job.refresh()
        assert job.get_status() == "finished" and job.return_value() == 2 ** n
    failing.refresh()
    assert failing.get_status() == "failed"
    assert queue.count == 0
    assert len(queue.failed_job_registry) == 1

"""``hub.backoff.delay``: the one exponential backoff (cap, floor, jitter) of the workers and channels."""

from __future__ import annotations

import math
import random

from hub.backoff import FULL_JITTER, delay


def top(low: float, high: float) -> float:
    return high


def bottom(low: float, high: float) -> float:
    return low


def no_random(low: float, high: float) -> float:
    raise AssertionError("no jitter asked for: no random number drawn")


def test_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    assert [delay(n, initial=0.5, cap=2.0) for n in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert [delay(n, initial=2.0, uniform=no_random) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_a_negative_count_is_the_first_wait_and_a_huge_one_cannot_overflow() -> None:
    assert delay(-3, initial=1.0, cap=60.0) == 1.0
    assert delay(10**9, initial=0.5, cap=2.0, jitter=(0.5, 1.0), uniform=top) == 2.0
    assert math.isfinite(delay(10**9, initial=2.0))  # no cap: big, but a number


def test_the_jitter_multiplies_the_capped_wait() -> None:
    assert [delay(n, initial=0.5, cap=2.0, jitter=(0.5, 1.0), uniform=bottom) for n in range(4)] == \
        [0.25, 0.5, 1.0, 1.0]
    assert delay(0, initial=4.0, jitter=FULL_JITTER, uniform=bottom) == 0.0  # full jitter: 0…wait
    # a factor above 1 spreads around the cap (IMAP's ±20 %)
    assert delay(20, initial=1.0, cap=300.0, jitter=(0.8, 1.2), uniform=top) == 360.0
    assert delay(20, initial=1.0, cap=300.0, jitter=(0.8, 1.2), uniform=bottom) == 240.0


def test_the_floor_keeps_a_tiny_wait_from_becoming_a_tight_loop_unless_the_cap_is_below_it() -> None:
    assert delay(0, initial=0.1, cap=2.0, jitter=(0.5, 1.0), floor=0.2, uniform=bottom) == 0.2
    assert delay(0, initial=0.1, cap=2.0, floor=0.2) == 0.2
    assert delay(3, initial=0.5, cap=0.1, jitter=(0.5, 1.0), floor=0.2, uniform=top) == 0.1
    assert delay(3, initial=0.5, cap=0.1, jitter=(0.5, 1.0), floor=0.2) <= 0.1


def test_the_random_source_is_injected_and_the_samples_spread_over_the_range() -> None:
    rng = random.Random(20261207)
    samples = [delay(3, initial=1.0, cap=60.0, jitter=(0.5, 1.0), uniform=rng.uniform) for _ in range(500)]
    assert all(4.0 <= s <= 8.0 for s in samples)
    assert len(set(samples)) > 450 and min(samples) < 4.2 and max(samples) > 7.8
    again = random.Random(20261207)
    assert samples == [delay(3, initial=1.0, cap=60.0, jitter=(0.5, 1.0), uniform=again.uniform)
                       for _ in range(500)]


def test_the_callers_numbers() -> None:
    """What each caller waited before this module, formula by formula (their old copies, inlined)."""
    for n in range(1, 15):
        # Telegram connect/poll: min(cap, base·2^max(0, failures−1))·U(0.5, 1)
        for u in (bottom, top):
            assert delay(n - 1, initial=1.0, cap=60.0, jitter=(0.5, 1.0), uniform=u) == \
                min(60.0, 1.0 * 2 ** max(0, n - 1)) * u(0.5, 1.0)
            # IMAP: min(max_backoff, (30 | 1)·2^min(failures−1, 10))·U(0.8, 1.2)
            for first in (1.0, 30.0):
                assert delay(n - 1, initial=first, cap=300.0, jitter=(0.8, 1.2), uniform=u) == \
                    min(300.0, first * 2 ** min(n - 1, 10)) * u(0.8, 1.2)
            # outbox: min(600, 2·2^max(0, attempt−1))·U(0.5, 1)
            assert delay(n - 1, initial=2.0, cap=600.0, jitter=(0.5, 1.0), uniform=u) == \
                min(600.0, 2.0 * 2 ** max(0, n - 1)) * u(0.5, 1.0)
        # the inbound journal: base·2^(attempt−1), no cap, no jitter
        assert delay(n - 1, initial=60.0, uniform=no_random) == 60.0 * 2 ** (n - 1)
    # Telegram's downloads waited base·attempt: the same for its three attempts (two waits)
    assert [delay(a - 1, initial=1.0, cap=60.0) for a in (1, 2)] == [1.0, 2.0]

"""Reconnect and retry waits: the one exponential backoff of the hub's workers and channels.

``delay(n, initial=…, cap=…, jitter=…, floor=…)`` is ``min(cap, initial·2^n)``, multiplied by a
random factor drawn from ``jitter`` (``(low, high)``; none by default), and never below ``floor``
(no tight loop) — unless the cap is below the floor: whoever set so small a cap asked for it.
``n`` counts from 0 (the first wait is ``initial``); a negative ``n`` counts as 0 and a huge one
cannot overflow.

- **Full jitter** is ``(0.0, 1.0)``, **partial** e.g. ``(0.5, 1.0)`` (50–100 %: hubs restarted
  together do not retry in lockstep). A factor above 1 (``(0.8, 1.2)``) may go past the cap by
  that factor: the cap bounds the exponential, the jitter spreads around it.
- The random source is injectable (``uniform``, ``random.uniform``'s signature) so a test can pin
  the jitter's ends.

The callers and their numbers (kept as they were when this module replaced their copies):

- AMI reconnect: 0.5 s doubling, capped at ``[asterisk] reconnect_max_seconds`` (2 s), 50–100 %,
  at least 0.2 s; ``n`` = failures since the last login (docs/decisions.md, "AMI connection").
- Telegram connect and polling: 1 s doubling, capped at 60 s, 50–100 %; ``n`` = failures − 1.
- Telegram file downloads: 1 s, then 2 s (``n`` = attempt − 1, no jitter, the same 60 s cap; it
  was ``1 s × attempt``, the same two waits for the default three attempts).
- IMAP reconnect: 1 s doubling (30 s after a refused login), capped at 300 s, 80–120 %;
  ``n`` = failures − 1.
- Outbox send retries: 2 s doubling, capped at 600 s, 50–100 %; ``n`` = attempt − 1.
- Inbound journal retries: 2 s doubling, no cap (``max_attempts`` ends them), no jitter;
  ``n`` = attempt − 1.

This module is infrastructure: it imports nothing of the hub (import-linter keeps the CRM core, the
web layer and the channels out of it).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

Uniform = Callable[[float, float], float]

NO_JITTER = (1.0, 1.0)
FULL_JITTER = (0.0, 1.0)

# 2^64 times any sensible initial wait is beyond any cap; past it the exponent stops growing (a
# float power of 2 with a big exponent would overflow)
_MAX_DOUBLINGS = 64


def delay(n: int, *, initial: float, cap: float = math.inf, jitter: tuple[float, float] = NO_JITTER,
          floor: float = 0.0, uniform: Uniform = random.uniform) -> float:
    """The wait before try ``n + 1`` (``n`` failures so far, or ``n`` retries already waited for)."""
    base = min(cap, initial * 2.0 ** min(max(n, 0), _MAX_DOUBLINGS))
    low, high = jitter
    if (low, high) != NO_JITTER:
        base *= uniform(low, high)
    return max(min(floor, cap), base)

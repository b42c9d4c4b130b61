"""Limits on failed logins, in memory (one process), that an attacker cannot wash away.

Three counters of failures, each over a sliding window, each locking what it counts when it fills:

- **a login from one address** (``PAIR``): the usual guessing; a short lock that doubles with every
  lock in a row (1 min, 2, 4 … at most an hour), forgotten after a quiet day;
- **an account from anywhere** (``ACCOUNT``): guessing spread over many addresses; a higher
  threshold, so that one stranger cannot lock a colleague out by typing a wrong password a few times,
  and the same doubling lock;
- **an address over any logins** (``SOURCE``): password spraying (one password tried on many logins).

And one more: failures on logins nobody has (``UNKNOWN``), over all addresses, are limited as a
whole: cheap to try (no hash is computed for them) they would otherwise fill the tables.

Entries are dropped only when their window has passed and they hold no lock: a flood of throw-away
logins never evicts a block (it is refused by the ``SOURCE`` and ``UNKNOWN`` limits instead). The
address is the client's own: ``client_address`` reads ``X-Forwarded-For`` only from a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    failures: int  # this many within ``window`` seconds lock
    window: float
    lock: float  # the first lock's length; each next one in a row doubles, up to ``max_lock``
    max_lock: float = 3600.0


PAIR = Limit(failures=10, window=300.0, lock=60.0)
ACCOUNT = Limit(failures=50, window=900.0, lock=60.0)
SOURCE = Limit(failures=100, window=600.0, lock=300.0)
UNKNOWN = Limit(failures=600, window=60.0, lock=60.0, max_lock=600.0)
QUIET = 86_400.0  # a key without failures this long starts again from the first lock


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    locks: int = 0
    last: float = 0.0


class _Table:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.counters: dict[object, _Counter] = {}

    def locked(self, key: object, now: float) -> float:
        """Seconds left of the key's lock (0: not locked)."""
        counter = self.counters.get(key)
        return max(0.0, counter.locked_until - now) if counter is not None else 0.0

    def fail(self, key: object, now: float) -> bool:
        """Count a failure → True when it starts a lock."""
        counter = self.counters.setdefault(key, _Counter())
        if now - counter.last > QUIET:
            counter.locks = 0
        counter.last = now
        failures = counter.failures
        failures.append(now)
        while failures and now - failures[0] > self.limit.window:
            failures.popleft()
        if len(failures) < self.limit.failures or counter.locked_until > now:
            return False
        counter.locks += 1
        counter.locked_until = now + min(self.limit.lock * 2 ** (counter.locks - 1), self.limit.max_lock)
        failures.clear()
        return True

    def forget(self, key: object) -> None:
        self.counters.pop(key, None)

    def prune(self, now: float) -> None:
        """Drop what is neither locked nor within its window (or its quiet day, for a lock history)."""
        for key, counter in list(self.counters.items()):
            idle = now - counter.last
            over = idle > self.limit.window and (not counter.locks or idle > QUIET)
            if counter.locked_until <= now and over:
                del self.counters[key]


@dataclass(frozen=True)
class Lockout:
    """A lock that a failure just started: what it locks, for how long (for the admins' bell)."""

    kind: str  # "pair" | "account" | "source" | "unknown"
    login: str
    remote: str
    seconds: float


class LoginLimiter:
    PRUNE_EVERY = 1000  # failures between two sweeps of the tables

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, pair: Limit = PAIR,
                 account: Limit = ACCOUNT, source: Limit = SOURCE, unknown: Limit = UNKNOWN) -> None:
        self.clock = clock
        self._pairs = _Table(pair)
        self._accounts = _Table(account)
        self._sources = _Table(source)
        self._unknown = _Table(unknown)
        self._since_prune = 0

    def set_limits(self, *, account: Limit | None = None, source: Limit | None = None) -> None:
        """Other thresholds for the account and address counters (the tests' smaller ones)."""
        if account is not None:
            self._accounts.limit = account
        if source is not None:
            self._sources.limit = source

    def retry_after(self, remote: str, login: str) -> float:
        """Seconds until this login from this address may be tried again (0: now)."""
        now, name = self.clock(), login.lower()
        return max(self._pairs.locked((remote, name), now), self._accounts.locked(name, now),
                   self._sources.locked(remote, now), self._unknown.locked(None, now))

    def blocked(self, remote: str, login: str) -> bool:
        return self.retry_after(remote, login) > 0

    def failed(self, remote: str, login: str, *, known: bool = True) -> list[Lockout]:
        """A failed login (``known``: the login exists) → the locks it started."""
        now, name = self.clock(), login.lower()
        started: list[Lockout] = []
        tables: Iterable[tuple[str, _Table, object]] = (
            ("pair", self._pairs, (remote, name)), ("source", self._sources, remote),
            *((("account", self._accounts, name),) if known else (("unknown", self._unknown, None),)))
        for kind, table, key in tables:
            if table.fail(key, now):
                started.append(Lockout(kind, name, remote, table.locked(key, now)))
        self._since_prune += 1
        if self._since_prune >= self.PRUNE_EVERY:
            self._since_prune = 0
            for table in (self._pairs, self._accounts, self._sources, self._unknown):
                table.prune(now)
        return started

    def succeeded(self, remote: str, login: str) -> None:
        """The right password: this address's failures on this login are forgiven (not the account's
        or the address's, which others may share)."""
        self._pairs.forget((remote, login.lower()))

    def size(self) -> int:
        return sum(len(t.counters) for t in (self._pairs, self._accounts, self._sources, self._unknown))


def client_address(remote: str | None, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """The client's address: ``remote``, unless it is a trusted proxy (an address or a network such
    as ``10.0.0.0/8``); then the last address of ``X-Forwarded-For`` that is no trusted proxy."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in networks)

    address = remote or ""
    if not networks or not is_trusted(address) or not forwarded_for:
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop):
            return hop
        address = hop
    return address

"""A tiny in-memory limit on failed logins, per client address and login."""

from __future__ import annotations

import time
from collections import deque


class LoginLimiter:
    def __init__(self, max_failures: int = 10, window_seconds: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = time.monotonic()
        failures = self._failures.get(key, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def blocked(self, remote: str, login: str) -> bool:
        return len(self._recent((remote, login.lower()))) >= self.max_failures

    def failed(self, remote: str, login: str) -> None:
        key = (remote, login.lower())
        self._failures.setdefault(key, self._recent(key)).append(time.monotonic())
        if len(self._failures) > 10_000:  # a flood of different logins: forget the oldest
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, remote: str, login: str) -> None:
        self._failures.pop((remote, login.lower()), None)

"""Security finding 8: the failed-login limiter forgot its oldest entries at 10,000 (10,010 failures
with throw-away logins reset a victim's block in ~16 s), did not limit password spraying, and behind
a reverse proxy counted everybody as one address."""

from __future__ import annotations

from hub.web.ratelimit import ACCOUNT, PAIR, SOURCE, UNKNOWN, LoginLimiter, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_login_from_one_address_locks_with_a_lock_that_doubles() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock)
    for _ in range(PAIR.failures - 1):
        limiter.failed("127.1.0.1", "anna")
    assert not limiter.blocked("127.1.0.1", "anna")
    [lock] = limiter.failed("127.1.0.1", "Anna")  # logins are counted without case
    assert (lock.kind, lock.seconds) == ("pair", PAIR.lock)
    assert limiter.blocked("127.1.0.1", "anna") and not limiter.blocked("127.1.0.2", "anna")
    clock.now += PAIR.lock + 1
    assert not limiter.blocked("127.1.0.1", "anna")
    for _ in range(PAIR.failures):
        limiter.failed("127.1.0.1", "anna")
    assert 2 * PAIR.lock - 1 < limiter.retry_after("127.1.0.1", "anna") <= 2 * PAIR.lock


def test_a_flood_of_throw_away_logins_never_resets_a_block() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock)
    for _ in range(PAIR.failures):
        limiter.failed("127.1.0.1", "victim")
    assert limiter.blocked("127.1.0.1", "victim")
    for i in range(10_010):  # the old attack: fill the table with new keys
        address = f"127.3.{i // 250 % 250}.{i % 250}"
        if not limiter.blocked(address, f"x{i}"):
            limiter.failed(address, f"x{i}", known=False)
        clock.now += 0.0016  # ~16 s in all
    assert limiter.blocked("127.1.0.1", "victim")


def test_password_spraying_from_one_address_locks_the_address() -> None:
    limiter = LoginLimiter(Clock())
    for i in range(SOURCE.failures):
        assert not limiter.blocked("127.1.0.9", f"user{i}")
        limiter.failed("127.1.0.9", f"user{i}")
    assert limiter.blocked("127.1.0.9", "somebody-else")
    assert not limiter.blocked("127.1.0.10", "user1")


def test_an_account_locks_on_guessing_from_many_addresses_not_on_a_strangers_few_tries() -> None:
    limiter = LoginLimiter(Clock())
    for _ in range(5):
        limiter.failed("127.2.0.66", "anna")
    assert not limiter.blocked("127.1.0.1", "anna")  # a stranger cannot lock Anna out
    locks = []
    for i in range(ACCOUNT.failures - 5):
        locks += limiter.failed(f"127.2.0.{i}", "anna")
    assert [lock.kind for lock in locks] == ["account"]
    assert limiter.blocked("127.1.0.1", "anna")


def test_unknown_logins_are_limited_as_a_whole() -> None:
    limiter = LoginLimiter(Clock())
    locks = []
    for i in range(UNKNOWN.failures):
        locks += limiter.failed(f"127.4.{i // 250}.{i % 250}", f"nobody{i}", known=False)
    assert [lock.kind for lock in locks] == ["unknown"]
    assert limiter.blocked("127.4.99.1", "nobody-new")


def test_the_right_password_forgives_only_this_addresses_failures() -> None:
    limiter = LoginLimiter(Clock())
    for _ in range(PAIR.failures - 1):
        limiter.failed("127.1.0.1", "anna")
    limiter.succeeded("127.1.0.1", "anna")
    limiter.failed("127.1.0.1", "anna")
    assert not limiter.blocked("127.1.0.1", "anna")


def test_the_tables_are_pruned_of_what_is_over() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock)
    for i in range(LoginLimiter.PRUNE_EVERY - 1):
        limiter.failed(f"127.5.{i // 250}.{i % 250}", f"u{i}")
    clock.now += 90_000
    limiter.failed("127.5.9.9", "last")
    assert limiter.size() <= 4


def test_the_client_address_comes_from_a_trusted_proxy_only() -> None:
    # (every address here is a loopback one, as all in the tests: 127.0.0.0/8 is loopback)
    trusted = ["127.0.0.1", "127.9.0.0/16"]
    assert client_address("127.0.0.1", "127.2.0.7", trusted) == "127.2.0.7"
    assert client_address("127.0.0.1", "127.1.0.1, 127.2.0.7, 127.9.2.3", trusted) == "127.2.0.7"
    assert client_address("127.2.0.9", "127.1.0.1", trusted) == "127.2.0.9"  # not a proxy: ignored
    assert client_address("127.0.0.1", "127.2.0.7", []) == "127.0.0.1"  # no proxies configured
    assert client_address("127.0.0.1", None, trusted) == "127.0.0.1"
    assert client_address("::1", "127.2.0.8", ["::1"]) == "127.2.0.8"

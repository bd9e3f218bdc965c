"""The counting behind the connection caps (app/admission.py), without sockets."""

from __future__ import annotations

import json
from typing import Any

from app.admission import Admission, Deadlines, address_key, error_answer
from app.http_protocol import trusted_proxies


def admission(total: int = 0, per_address: int = 0, proxies: tuple[str, ...] = ()) -> Admission:
    return Admission(
        max_total=total,
        max_per_address=per_address,
        header_timeout_s=1,
        body_timeout_s=1,
        trusted=trusted_proxies(proxies),
    )


def test_ipv6_clients_count_per_64_and_ipv4_per_address() -> None:
    """Addresses of one IPv6 /64 share a key; IPv4 addresses and other strings are their own."""
    assert address_key("2001:db8:1:2::7") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2::7") != address_key("2001:db8:1:3::7")
    assert address_key("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("not:an:address") == "not:an:address"


def test_ipv4_addresses_written_as_ipv6_count_as_the_ipv4_address() -> None:
    """A mapped (dual-stack listener) or NAT64 address counts as the IPv4 address it carries."""
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.2") == "192.0.2.2"
    assert address_key("64:ff9b::c000:201") == "192.0.2.1"
    assert address_key("::1") == "::/64"


def test_the_per_address_cap_refuses_with_429_and_frees_on_leave() -> None:
    """The third connection of an address over a cap of 2 is refused; a leave frees a place."""
    gate = admission(per_address=2)
    keys = [gate.admit("192.0.2.1")[0] for _ in range(2)]
    key, answer = gate.admit("192.0.2.1")
    assert key is None and answer is not None
    assert answer.startswith(b"HTTP/1.1 429 ")
    assert gate.admit("192.0.2.2")[1] is None
    gate.leave(keys[0])
    assert gate.admit("192.0.2.1")[1] is None
    assert (gate.open, gate.refused_address) == (3, 1)


def test_the_total_cap_refuses_with_503() -> None:
    """Over max_total every address is refused with 503; caps of 0 are off."""
    gate = admission(total=2)
    gate.admit("192.0.2.1")
    gate.admit("192.0.2.2")
    answer = gate.admit("192.0.2.3")[1]
    assert answer is not None and answer.startswith(b"HTTP/1.1 503 ")
    unlimited = admission()
    assert all(unlimited.admit("192.0.2.1") == (None, None) for _ in range(1000))


def test_a_trusted_proxy_is_not_counted_and_names_its_client() -> None:
    """A proxy's connections are uncounted per address; its X-Forwarded-For client is keyed."""
    gate = admission(per_address=1, proxies=("10.0.0.0/8",))
    assert [gate.admit("10.1.2.3")[1] for _ in range(5)] == [None] * 5
    assert gate.forwarded_key("198.51.100.9, 10.0.0.7") == "198.51.100.9"
    assert gate.forwarded_key("2001:db8::1") == "2001:db8::/64"
    assert admission(per_address=1).forwarded_key("198.51.100.9") is None


def test_error_answers_are_whole_http_responses_in_the_contract_format() -> None:
    """The bytes sent on refusal carry a length, close the connection and a JSON error body."""
    raw = error_answer(429, "Too Many Requests", "rate_limited", "slow down", retry_after=True)
    head, body = raw.split(b"\r\n\r\n")
    assert b"connection: close" in head and b"retry-after: " in head
    assert f"content-length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": {"code": "rate_limited", "message": "slow down"}}


class FakeLoop:
    """Just the loop methods Deadlines uses, with time moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, at: float, callback: Any) -> object:
        self.timers.append((at, callback))
        return object()  # a handle: Deadlines never cancels it

    def run_due(self) -> None:
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback in due:
            callback()


def test_deadlines_fire_in_order_for_what_is_still_armed_with_one_timer() -> None:
    """Items not disarmed in time are late, in arming order; one timer at a time is pending."""
    late: list[str] = []
    deadlines: Deadlines[str] = Deadlines(10.0, late.append)
    loop: Any = FakeLoop()
    deadlines.arm("a", loop)
    loop.now += 1
    deadlines.arm("b", loop)
    deadlines.arm("c", loop)
    assert len(loop.timers) == 1
    deadlines.disarm("a")
    deadlines.disarm("nothing")
    loop.now = 110.5  # a's deadline: a is gone, b and c are not due yet
    loop.run_due()
    assert late == []
    assert [at for at, _ in loop.timers] == [111.0]
    loop.now = 111.0
    loop.run_due()
    assert late == ["b", "c"]
    assert len(deadlines) == 0 and loop.timers == []
    deadlines.arm("d", loop)  # an empty queue arms its timer again
    assert [at for at, _ in loop.timers] == [121.0]


def test_a_failing_handler_does_not_stop_the_other_deadlines() -> None:
    """An item whose handler raises is logged; the items after it still fall due."""
    late: list[str] = []

    def on_late(item: str) -> None:
        if item == "bad":
            raise RuntimeError("boom")
        late.append(item)

    deadlines: Deadlines[str] = Deadlines(1.0, on_late)
    loop: Any = FakeLoop()
    for item in ("bad", "good"):
        deadlines.arm(item, loop)
    loop.now += 1
    loop.run_due()
    assert late == ["good"]


def test_a_handler_that_arms_the_same_queue_leaves_one_timer() -> None:
    """An item re-armed from its own handler falls due again later, with still one timer."""
    late: list[str] = []
    deadlines: Deadlines[str] = Deadlines(1.0, lambda item: (late.append(item), again(item)))

    def again(item: str) -> None:
        if late.count(item) < 2:
            deadlines.arm(item, loop)

    loop: Any = FakeLoop()
    deadlines.arm("a", loop)
    loop.now += 0.5
    deadlines.arm("b", loop)
    loop.now = 101.0
    loop.run_due()
    assert late == ["a"]
    assert len(loop.timers) == 1
    loop.now = 102.0
    loop.run_due()
    assert late == ["a", "b", "a"]
    assert len(loop.timers) == 1

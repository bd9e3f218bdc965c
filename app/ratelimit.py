"""Token buckets: a steady rate with bursts, per connection or per key."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable


class TokenBucket:
    """``rate`` events per second on average, bursts of ``burst``; time is passed in."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now_s: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now_s

    def take(self, now_s: float) -> bool:
        """Spend one token if there is one."""
        self.tokens = min(self.burst, self.tokens + (now_s - self.last) * self.rate)
        self.last = now_s
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class RateLimiter:
    """One bucket per key; the least recently used keys are forgotten beyond ``max_keys``."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def allow(self, key: Hashable, now_s: float) -> bool:
        """Whether ``key`` may act now (spending one token)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now_s)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now_s)

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until a refused key has a token again, at most."""
        return max(1, math.ceil(1 / self.rate))

"""Per-hypervisor concurrency caps across every worker: leases in Redis.

A hypervisor's leases are a sorted set (member: the holder, score: when the lease expires, on the
Redis server's clock). Taking one is a single Lua script — drop expired leases, then take one if
fewer than ``limit`` are held — so two workers never both take the last one. A lease expires on its
own after ``ttl`` seconds: a worker killed while holding one frees it without anyone's help.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HypervisorLeases"]

_ACQUIRE = """
local key, ttl, limit, holder = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, holder) or redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + ttl, holder)
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
  return 1
end
return 0
"""


class HypervisorLeases:
    """Leases on hypervisors, held in the Redis at ``url`` (the broker's, typically)."""

    def __init__(self, url: str, ttl: float, prefix: str = "vmsec:hypervisor-lease:") -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url)
        self.ttl = ttl
        self.prefix = prefix
        self._acquire = self.client.register_script(_ACQUIRE)

    def acquire(self, hypervisor: str, limit: int, holder: str) -> bool:
        """Take (or renew) a lease on ``hypervisor`` for ``holder``; False when ``limit`` are held."""
        return bool(self._acquire(keys=[self.prefix + hypervisor], args=[self.ttl, limit, holder]))

    def release(self, hypervisor: str, holder: str) -> None:
        self.client.zrem(self.prefix + hypervisor, holder)

    def held(self, hypervisor: str) -> int:
        """Leases held now (expired ones not counted)."""
        t = self.client.time()
        return int(self.client.zcount(self.prefix + hypervisor, t[0] + t[1] / 1e6, "+inf"))

    def close(self) -> None:
        self.client.close()

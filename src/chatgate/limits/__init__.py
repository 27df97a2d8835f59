"""Quota counters: a token bucket (GCRA) per rate limit and a lease set per concurrency limit.

``Limiter`` is the one interface; ``MemoryLimiter`` keeps the counters in this process,
``RedisLimiter`` in Redis, shared by every replica, each update one Lua script. The front
decides which buckets a request is charged to (``front/quota.py``); this package only counts.
"""

from chatgate.limits.base import Bucket, Decision, Kind, Level, Limiter, StoreUnavailable
from chatgate.limits.memory import MemoryLimiter

__all__ = ["Bucket", "Decision", "Kind", "Level", "Limiter", "MemoryLimiter", "StoreUnavailable"]

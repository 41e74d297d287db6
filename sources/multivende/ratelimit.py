"""At most ``LIMIT`` requests per ``WINDOW`` seconds to Multivende's API for one merchant.

Multivende allows about 5 requests per second ("El rps … es de 5", its 2026 integration challenge; what
it answers beyond that is not documented). Every API call of a merchant first reserves a send time:
the call may go when fewer than ``LIMIT`` calls of that merchant were reserved in the ``WINDOW`` before
it (a sliding window, which is what a per-second limit counted on the server's side needs; a token
bucket would let ten calls through in one second after an idle one). The caller sleeps until its time.

- With ``settings.REDIS_URL`` set, the reservations live in Redis (one short Lua script, on the Redis
  server's clock), so every worker process and host of the product shares one limit per merchant.
- Without it (the embedded demo, a single process), they live in this process: then N processes could
  together send N × ``LIMIT`` per second. If Redis cannot be reached the process-local limiter is used
  for that call, with a warning, rather than failing the poll.

``WINDOW`` is a little over one second: a request reaches Multivende some milliseconds after we send it,
and uneven latency must not bunch six requests into one of Multivende's seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque

from django.conf import settings

logger = logging.getLogger(__name__)

LIMIT = 5
WINDOW = 1.1
KEY_PREFIX = "bms:multivende:rps:"

# KEYS[1]: the merchant's list of reserved send times (ascending). ARGV: limit, window (s).
# Returns the seconds to wait, as text (Lua numbers returned to Redis become integers). TIME before a
# write needs effects replication, the default since Redis 7 and switched on explicitly for 5 and 6.
_RESERVE = """
redis.replicate_commands()
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1000000
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local now_s = at
local reserved = redis.call('LRANGE', KEYS[1], -limit, -1)
if #reserved >= limit then
  local earliest = tonumber(reserved[1]) + window
  if earliest > at then at = earliest end
end
redis.call('RPUSH', KEYS[1], string.format('%.6f', at))
redis.call('LTRIM', KEYS[1], -limit, -1)
redis.call('PEXPIRE', KEYS[1], math.ceil((at - now_s + window) * 1000) + 1000)
return string.format('%.6f', at - now_s)
"""


class LocalLimiter:
    """The same sliding window, kept in this process (threads share it)."""

    def __init__(self, limit: int = LIMIT, window: float = WINDOW):
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._reserved: dict[str, deque] = defaultdict(deque)

    def reserve(self, key: str) -> float:
        with self._lock:
            now = time.monotonic()
            reserved = self._reserved[key]
            at = now
            if len(reserved) >= self.limit:
                at = max(at, reserved[-self.limit] + self.window)
            reserved.append(at)
            while len(reserved) > self.limit:
                reserved.popleft()
            return at - now


class RedisLimiter:
    """Reservations shared by every process that talks to the same Redis."""

    def __init__(self, url: str, limit: int = LIMIT, window: float = WINDOW):
        import redis

        self.limit, self.window = limit, window
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_RESERVE)

    def reserve(self, key: str) -> float:
        return float(self._script(keys=[KEY_PREFIX + key], args=[self.limit, self.window]))


_local = LocalLimiter()
_shared: dict[str, RedisLimiter] = {}
_shared_lock = threading.Lock()


def _redis_limiter() -> RedisLimiter | None:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    with _shared_lock:
        if url not in _shared:
            _shared[url] = RedisLimiter(url)
        return _shared[url]


def reserve(merchant_id: str) -> float:
    """Reserves the next send time for one of ``merchant_id``'s calls; returns the seconds to wait."""
    import redis

    shared = _redis_limiter()
    if shared is not None:
        try:
            return shared.reserve(merchant_id)
        except redis.RedisError as exc:
            logger.warning("Multivende rate limit: Redis unavailable (%s); limiting within this process", exc)
    return _local.reserve(merchant_id)


def wait_turn(merchant_id: str) -> None:
    """Blocks until this merchant's next call may be sent."""
    delay = reserve(merchant_id)
    if delay > 0:
        time.sleep(delay)

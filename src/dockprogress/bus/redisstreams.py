"""The Redis Streams bus: its keys, its guarantees, and the two Lua scripts that write it.

Keys (prefix ``dockprogress``, one set per Redis database)::

    dockprogress:events   STREAM  one entry per event  {e: <event JSON>}
                                  or per heartbeat     {h: <node>}
    dockprogress:tasks    HASH    "<node>\\n<task>" -> the task's latest event JSON
    dockprogress:ended    ZSET    "<node>\\n<task>" scored by when it ended (Redis time)
    dockprogress:nodes    HASH    node -> when it last published (Redis time, seconds)

Semantics (the README's "Fleet" section says the same to users):

* **Transport and retention.** Every event and heartbeat is appended to the stream, trimmed
  on each append to about ``stream_maxlen`` entries (100,000) and, with each heartbeat, to
  the last ``stream_age`` seconds (1 h). The stream only carries changes; state lives in
  the hash.
* **Latest state, late joiners.** The same script that appends an event stores it as its
  task's latest state, atomically. A replica (or a browser on it) that starts late reads
  the hash and the stream's last id in one transaction, then reads the stream *from that id*
  (never ``$``): it sees every running task, the finished ones still in the history, and
  no event falls between the two reads.
* **History.** Finished tasks stay for ``history_age`` (24 h), at most ``history_max``
  (10,000), oldest-ended forgotten first; running tasks stay until they end.
* **Publishers while Redis is away.** A publisher keeps, per task, the latest event not yet
  written, in a queue of at most ``max_queue`` tasks (10,000): intermediate states may be
  coalesced, and when the queue is full the oldest running tasks' pending states go first,
  but a task's final state is never dropped. It resends when Redis is back; at exit it waits
  up to ``close_timeout`` (30 s; 5 s if it never reached Redis) before giving up, and says so.
* **Heartbeats and stale.** Each publisher appends a heartbeat every ``heartbeat`` seconds
  (5 s). A replica that has heard nothing from a node for ``node_timeout`` (30 s) shows that
  node's running tasks ``stale`` (entry flag) until it speaks again.
* **Replicas** read with their own last id and no consumer group: any number of them see
  the same entries, and stopping one changes nothing for the others.
* Entries that are not events (garbage written by something else) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from dockprogress.bus.feed import RedisFeed
    from dockprogress.bus.publisher import RedisPublisher
    from dockprogress.sinks.web.hub import EventHub

__all__ = ["HEARTBEAT_SCRIPT", "PUBLISH_SCRIPT", "Layout", "RedisBus", "connect", "task_field"]

STREAM_MAXLEN: Final = 100_000
STREAM_AGE: Final = 3600.0
HISTORY_MAX: Final = 10_000
HISTORY_AGE: Final = 24 * 3600.0
HEARTBEAT: Final = 5.0
NODE_TIMEOUT: Final = 30.0

# KEYS: stream, tasks, ended, nodes
# ARGV: node, stream maxlen, history max, history age (s), then per event (one per task):
#       field, event JSON, "1" when terminal
# One call writes a whole batch: one stream entry per event, then the latest states in one
# HSET, the ended set in one ZADD and one ZREM, the node's time once.
PUBLISH_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stream, maxlen = KEYS[1], ARGV[2]
local states, ended, running = {}, {}, {}
for i = 5, #ARGV, 3 do
  local field, event = ARGV[i], ARGV[i + 1]
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event)
  states[#states + 1] = field
  states[#states + 1] = event
  if ARGV[i + 2] == '1' then
    ended[#ended + 1] = now
    ended[#ended + 1] = field
  else
    running[#running + 1] = field
  end
end
if #states > 0 then redis.call('HSET', KEYS[2], unpack(states)) end
if #running > 0 then redis.call('ZREM', KEYS[3], unpack(running)) end
redis.call('HSET', KEYS[4], ARGV[1], tostring(now))
if #ended > 0 then
  redis.call('ZADD', KEYS[3], unpack(ended))
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]),
                         'LIMIT', 0, 1000)
  local over = math.min(redis.call('ZCARD', KEYS[3]) - #old - tonumber(ARGV[3]), 2000)
  if over > 0 then
    for _, f in ipairs(redis.call('ZRANGE', KEYS[3], #old, #old + over - 1)) do
      old[#old + 1] = f
    end
  end
  if #old > 0 then
    redis.call('HDEL', KEYS[2], unpack(old))
    redis.call('ZREM', KEYS[3], unpack(old))
  end
end
return #states / 2
"""

# KEYS: stream, nodes;  ARGV: node, stream maxlen, stream age (s)
HEARTBEAT_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'h', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], tostring(now))
local min_ms = math.floor((now - tonumber(ARGV[3])) * 1000)
redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(min_ms))
return 1
"""


def task_field(node: str, task: str) -> str:
    """The hash field of a task: node names hold no newline (see ``resolve_node``)."""
    return f"{node}\n{task}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Key names and limits; one per bus."""

    prefix: str = "dockprogress"
    stream_maxlen: int = STREAM_MAXLEN
    stream_age: float = STREAM_AGE
    history_max: int = HISTORY_MAX
    history_age: float = HISTORY_AGE

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}:tasks"

    @property
    def ended(self) -> str:
        return f"{self.prefix}:ended"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"


def connect(url: str, *, socket_timeout: float = 5.0) -> Any:
    """A ``redis.asyncio`` client for ``url`` that does not retry by itself (callers do).

    Raises :class:`~dockprogress.bus.BusError` when redis-py is not installed.
    """
    try:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        from dockprogress.bus import BusError

        raise BusError("the Redis bus needs redis-py: pip install redis") from exc
    return redis.asyncio.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=3.0,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


class RedisBus:
    """The Redis Streams bus at ``url`` (``redis://`` or ``rediss://``)."""

    def __init__(
        self,
        url: str,
        layout: Layout | None = None,
        *,
        heartbeat: float = HEARTBEAT,
        node_timeout: float = NODE_TIMEOUT,
    ) -> None:
        self.url = url
        self.layout = layout if layout is not None else Layout()
        self.heartbeat = heartbeat
        self.node_timeout = node_timeout

    def publisher(self, node: str, **options: Any) -> RedisPublisher:
        from dockprogress.bus.publisher import RedisPublisher

        options.setdefault("heartbeat", self.heartbeat)
        return RedisPublisher(self.url, node, self.layout, **options)

    def feed(self, hub: EventHub, **options: Any) -> RedisFeed:
        from dockprogress.bus.feed import RedisFeed

        options.setdefault("node_timeout", self.node_timeout)
        return RedisFeed(self.url, hub, self.layout, **options)

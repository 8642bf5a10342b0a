"""Window totals in Redis: the I/O half of a shared budget store (``budgeting.store: redis://``).

Nothing here decides anything: this module turns totals into Redis commands and back. Who sends
what, and when, is ``shared.py``'s.

Keys (every one under ``{<store_prefix>}:``; the braces are a Redis Cluster hash tag, so all
keys of one deployment live in one slot and the scripts may touch any of them):

=============================================  ==================================================
``{p}:t:<budget>:<shape>:w<start_ns>``          hash: the totals of a window that closes, one
                                                 set of fields per instance (below); expires a
                                                 day after the longest such window could end
``{p}:t:<budget>:<shape>:b<bucket>``            hash: one bucket of a window that slides
``{p}:version``                                  integer: changes applied so far (the decision
                                                 version of every process, ``shared.py``)
``{p}:changes``                                  stream: one entry per applied change, id
                                                 ``<version>-0``, field ``d`` = the deltas (JSON);
                                                 trimmed to about ``STREAM_LENGTH`` entries
``{p}:epoch``                                    random, set once: a Redis that lost its data has
                                                 a new one
``{p}:applied:<writer>``                        sorted set: spool seqs of that writer applied
                                                 and not yet checkpointed (replays skip them)
``{p}:batch:<content id>``                       a batch's content applied within the dedup
                                                 horizon (retries to another process skip it)
``{p}:live:<shape>``                             when Redis began counting a budget shape
``{p}:alert:<alert id>``                         which process delivers a threshold alert
``{p}:overrides``, ``{p}:overrides:version``     hash: every override (kill switch, exemption,
                                                 raised limit) as JSON; bumped on each change
=============================================  ==================================================

An instance's fields in a totals hash are ``<key>\\x1fh``, ``...\\x1fl`` (units as
``h * 10^6 + l``: Redis integers are 64-bit, and one instance's spend may pass the 9.2 million
USD that many picodollars hold), ``...\\x1fc`` (calls), ``...\\x1fp`` (unpriced calls) and
``...\\x1fa`` (newest receive time), where ``<key>`` is the instance key as a JSON array.

Applying a change is one Lua script, so it is atomic: the replay check, the retry check, every
``HINCRBY``, the version and the stream entry happen together or not at all.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

from otelcost.budgets.deltas import UNIT_SPLIT, Delta, PendingChange

__all__ = ["BLOCK_MS", "STREAM_LENGTH", "RedisTotals", "Resync", "StoreUnavailable", "totals_key"]

STREAM_LENGTH: Final = 20_000
BLOCK_MS: Final = 250
"""How long one read of the change stream waits for a change (then the sync loop looks at its
windows and reads again)."""
_DAY_S: Final = 86_400
_SEP: Final = "\x1f"

StoreUnavailable = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
"""What a Redis that cannot be reached raises: the caller counts locally and retries later."""


@dataclass(frozen=True, slots=True)
class Totals:
    """One instance's totals as Redis holds them."""

    units: int
    calls: int
    unpriced: int
    as_of_ns: int


@dataclass(frozen=True, slots=True)
class Resync:
    """Every total of the asked hashes at one version (read in one script: consistent)."""

    version: int
    epoch: str
    totals: dict[str, dict[tuple[str, ...], Totals]]  # hash key -> instance key -> totals


def totals_key(prefix: str, budget: str, shape: str, period: str) -> str:
    return f"{{{prefix}}}:t:{budget}:{shape}:{period}"


_APPLY: Final = """
-- KEYS: version, changes. ARGV: stream length, the key prefix '{p}:', the changes (JSON).
-- A change: {writer, seq, checkpoint, content id, content ttl, deltas}, '' for what it lacks.
-- A delta: {budget, shape, period, instance key (JSON), units high, units low, calls, unpriced,
-- newest receive time, seconds to keep its hash}. Every number is a string: cjson decodes
-- numbers to doubles, and a picodollar total or a nanosecond time does not fit one.
-- Returns 1 (applied) or 0 (held already) per change.
local prefix, out = ARGV[2], {}
for _, c in ipairs(cjson.decode(ARGV[3])) do
  local fresh, applied, seq = true, prefix .. 'applied:' .. c[1], c[2]
  if seq ~= '' then
    if c[3] ~= '' then redis.call('ZREMRANGEBYSCORE', applied, '-inf', c[3]) end
    fresh = not redis.call('ZSCORE', applied, seq)
  end
  if fresh and c[4] ~= '' then
    fresh = redis.call('SET', prefix .. 'batch:' .. c[4], '1', 'NX', 'EX', c[5]) and true or false
  end
  if seq ~= '' then redis.call('ZADD', applied, seq, seq) end
  if fresh then
    local expiring = {}
    for _, d in ipairs(c[6]) do
      local hash, field = prefix .. 't:' .. d[1] .. ':' .. d[2] .. ':' .. d[3], d[4] .. '\\31'
      if d[5] ~= '0' then redis.call('HINCRBY', hash, field .. 'h', d[5]) end
      if d[6] ~= '0' then redis.call('HINCRBY', hash, field .. 'l', d[6]) end
      if d[7] ~= '0' then redis.call('HINCRBY', hash, field .. 'c', d[7]) end
      if d[8] ~= '0' then redis.call('HINCRBY', hash, field .. 'p', d[8]) end
      -- decimal strings of nanoseconds: compared as text
      local now, new = redis.call('HGET', hash, field .. 'a'), d[9]
      if (not now) or #new > #now or (#new == #now and new > now) then
        redis.call('HSET', hash, field .. 'a', new)
      end
      if not expiring[hash] then
        expiring[hash] = true
        redis.call('EXPIRE', hash, d[10])
      end
    end
    local v = redis.call('INCR', KEYS[1])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], v .. '-0', 'd', cjson.encode(c[6]))
  end
  table.insert(out, fresh and 1 or 0)
end
return out
"""

_RESYNC: Final = """
-- KEYS: version, epoch; ARGV: totals hashes
local out = {redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or ''}
for _, key in ipairs(ARGV) do table.insert(out, redis.call('HGETALL', key)) end
return out
"""


class RedisTotals:
    """The Redis commands of a shared store. Thread-safe (redis-py pools connections)."""

    def __init__(self, url: str, *, prefix: str, timeout_s: float) -> None:
        self.prefix = prefix
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        # The change stream is read with a blocking XREAD: its socket waits longer than it blocks.
        self._reader = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s + BLOCK_MS / 1000,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        self._apply = self._client.register_script(_APPLY)
        self._resync = self._client.register_script(_RESYNC)
        self._version_key = f"{{{prefix}}}:version"
        self._changes_key = f"{{{prefix}}}:changes"
        self._epoch_key = f"{{{prefix}}}:epoch"

    def close(self) -> None:
        self._client.close()
        self._reader.close()

    def key(self, *parts: str) -> str:
        return ":".join((f"{{{self.prefix}}}", *parts))

    def epoch(self) -> str:
        """The store's epoch, made on first use (the same for every process of the deployment)."""
        self._client.set(self._epoch_key, secrets.token_hex(4), nx=True)
        value = self._client.get(self._epoch_key)
        return value.decode() if isinstance(value, bytes) else str(value)

    def apply(
        self,
        changes: Sequence[PendingChange],
        *,
        checkpoint: int | None,
        content_ttl_s: Callable[[PendingChange], int],
        keep_s: Mapping[str, int],
    ) -> list[bool]:
        """Add each change once, in order, in one script: not when its writer's seq or its
        content id was applied before. Returns, per change, whether it was added.
        ``checkpoint``: this process's seqs up to it are never replayed again and are forgotten.
        ``keep_s``: per budget, how long its totals hashes are kept after a change."""
        items = ",".join(
            f"[{json.dumps(change.writer or '')},"
            f'"{"" if change.seq is None else change.seq}",'
            f'"{"" if checkpoint is None or change.writer is None else checkpoint}",'
            f"{json.dumps(change.content_id or '')},"
            f'"{max(1, content_ttl_s(change))}",'
            f"[{','.join(d.to_json(keep_s.get(d.budget, _DAY_S)) for d in change.deltas)}]]"
            for change in changes
        )
        args: list[str | int] = [STREAM_LENGTH, f"{{{self.prefix}}}:", f"[{items}]"]
        reply: Any = self._apply(keys=[self._version_key, self._changes_key], args=args)
        return [bool(flag) for flag in reply]

    def was_applied(self, writer: str, seq: int) -> bool:
        return self._client.zscore(self.key("applied", writer), seq) is not None

    def resync(self, hash_keys: Iterable[str]) -> Resync:
        """The version, the epoch and every total of ``hash_keys``, read atomically."""
        keys = list(hash_keys)
        reply: Any = self._resync(keys=[self._version_key, self._epoch_key], args=keys)
        version, epoch, *hashes = reply
        totals = {key: _instances(flat) for key, flat in zip(keys, hashes, strict=True)}
        return Resync(int(version), _text(epoch), totals)

    def changes(self, after: int) -> list[tuple[int, list[Delta]]] | None:
        """Changes after version ``after``, waiting up to ``BLOCK_MS`` for one; None when the
        stream no longer holds the one right after ``after`` (trimmed: resync instead)."""
        reply: Any = self._reader.xread({self._changes_key: f"{after}-0"}, count=1000, block=BLOCK_MS)
        if not reply:
            return []
        ((_, entries),) = reply
        out: list[tuple[int, list[Delta]]] = []
        expected = after + 1
        for entry_id, fields in entries:
            version = int(_text(entry_id).split("-", 1)[0])
            if version != expected:
                return None
            payload = json.loads(fields[b"d"])
            out.append((version, [Delta.from_json(item) for item in payload]))
            expected += 1
        return out

    def version(self) -> int:
        return int(_text(self._client.get(self._version_key) or b"0"))

    def live_since(self, shape: str, now_ns: int) -> int:
        """When Redis began counting budget shape ``shape`` (``now_ns`` if this is the first
        process to ask): calls received before it are seeded from the lake, once."""
        key = self.key("live", shape)
        self._client.set(key, now_ns, nx=True)
        return int(_text(self._client.get(key)))

    def put_override(self, override_id: str, payload: str) -> None:
        """Set an override (its JSON) for every process, and bump the overrides' version."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self.key("overrides"), override_id, payload)
        pipe.incr(self.key("overrides", "version"))
        pipe.execute()

    def drop_override(self, override_id: str) -> bool:
        """Remove an override for every process; False when it was not there."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(self.key("overrides"), override_id)
        pipe.incr(self.key("overrides", "version"))
        removed, _ = pipe.execute()
        return bool(removed)

    def overrides_version(self) -> int:
        return int(_text(self._client.get(self.key("overrides", "version")) or b"0"))

    def overrides(self) -> tuple[int, dict[str, str]]:
        """(version, override id -> JSON), read together."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self.key("overrides", "version"))
        pipe.hgetall(self.key("overrides"))
        version, found = pipe.execute()
        return int(_text(version or b"0")), {_text(k): _text(v) for k, v in found.items()}

    def claim_alert(self, alert_id: str, ttl_s: int) -> bool:
        """True for the one process that delivers this alert."""
        return bool(self._client.set(self.key("alert", alert_id), 1, nx=True, ex=max(1, ttl_s)))

    def ping(self) -> bool:
        return bool(self._client.ping())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _instances(flat: Sequence[bytes]) -> dict[tuple[str, ...], Totals]:
    fields: dict[str, dict[str, int]] = {}
    for index in range(0, len(flat), 2):
        name = _text(flat[index])
        key, _, suffix = name.rpartition(_SEP)
        fields.setdefault(key, {})[suffix] = int(flat[index + 1])
    out: dict[tuple[str, ...], Totals] = {}
    for key, values in fields.items():
        units = values.get("h", 0) * UNIT_SPLIT + values.get("l", 0)
        out[tuple(json.loads(key))] = Totals(
            units, values.get("c", 0), values.get("p", 0), values.get("a", 0)
        )
    return out

"""A cache of tool lists bounded by bytes as well as by count. Claude Code sends the same 20-30 tools (≈ 57 KB
of JSON) every turn, so validation (``protocol/anthropic.py``) and conversion (``convert/tools.py``) keep what
they made of a list they have seen. A client may as well send a new multi-megabyte list with every request:
a list over ``max_entry_bytes`` is not kept, and the oldest lists go once the total passes ``max_bytes``, so
the cache never holds more than that (32 distinct 2 MB lists had stayed resident, count-bounded only)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

#: the defaults: a list of up to 256 KiB of JSON is kept; all kept lists together weigh at most 2 MiB
MAX_ENTRY_BYTES = 256 * 1024
MAX_BYTES = 2 * 1024 * 1024
MAX_ENTRIES = 32


class ToolListCache(Generic[V]):
    """``key -> value`` with a size per entry (what it holds in memory, estimated by the caller), oldest
    first out. Not thread-safe: used from the event loop only."""

    __slots__ = ("_entries", "_bytes", "max_bytes", "max_entry_bytes", "max_entries")

    def __init__(self, max_bytes: int = MAX_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._entries: dict[Hashable, tuple[int, V]] = {}
        self._bytes = 0
        self.max_bytes, self.max_entry_bytes, self.max_entries = max_bytes, max_entry_bytes, max_entries

    def get(self, key: Hashable) -> V | None:
        hit = self._entries.get(key)
        return None if hit is None else hit[1]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def put(self, key: Hashable, value: V, size: int) -> None:
        """Keep ``value`` unless ``size`` is over the per-entry bound; older entries make room."""
        if size > self.max_entry_bytes or key in self._entries:
            return
        while self._entries and (self._bytes + size > self.max_bytes or len(self._entries) >= self.max_entries):
            old_size, _ = self._entries.pop(next(iter(self._entries)))  # dicts keep insertion order
            self._bytes -= old_size
        self._entries[key] = (size, value)
        self._bytes += size

    @property
    def nbytes(self) -> int:
        """The total size of what is kept."""
        return self._bytes

"""Waiting-line disciplines: priorities between classes (FIFO and LIFO are deques)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capsim.engine.events.station import Waiting


class _PriorityQueue:
    """An instance's waiting room with priorities between classes: one FIFO per level.

    `popleft` takes the oldest request of the highest level that has any (non-preemptive
    priority); `pop` the newest of that level (LIFO within priorities). Entries are the
    engine's `Waiting` entries.
    """

    __slots__ = ("level", "levels", "size")

    def __init__(self, priorities: tuple[int, ...]) -> None:
        self.level = priorities  # level of each class: 0 is served first
        self.levels: list[deque[Waiting]] = [deque() for _ in range(max(priorities) + 1)]
        self.size = 0

    def append(self, entry: Waiting) -> None:
        self.levels[self.level[entry.k]].append(entry)
        self.size += 1

    def _first(self) -> deque[Waiting]:
        return next(level for level in self.levels if level)

    def popleft(self) -> Waiting:
        self.size -= 1
        return self._first().popleft()

    def pop(self) -> Waiting:
        self.size -= 1
        return self._first().pop()

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return self.size

"""Waiting-line disciplines, as swappable types: FIFO, LIFO, and priorities between classes
(FIFO or LIFO within a level).

Every waiting line has `append(entry)`, `take()` (the entry a freed worker serves next under the
discipline), `popleft()` (the oldest entry of the highest level: the order in which a dying
instance fails its line), truth and `len`. `waiting_line(tier)` makes the tier's kind.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from capsim.model.types import Tier

if TYPE_CHECKING:
    from capsim.engine.events.station import Waiting


class Fifo(deque[Any]):
    """First come, first served."""

    __slots__ = ()
    take = deque.popleft


class Lifo(deque[Any]):
    """Last come, first served (`queue_discipline: lifo`): the newest request goes first."""

    __slots__ = ()
    take = deque.pop


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

    take = popleft

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return self.size


class _PriorityLifo(_PriorityQueue):
    """Priorities between classes, newest first within a level."""

    __slots__ = ()
    take = _PriorityQueue.pop


def waiting_line(tier: Tier) -> Any:
    """A new, empty waiting line of the tier's discipline."""
    lifo = tier.queue_discipline != "fifo"
    if tier.priorities:
        return _PriorityLifo(tier.priorities) if lifo else _PriorityQueue(tier.priorities)
    return Lifo() if lifo else Fifo()

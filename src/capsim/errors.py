"""The error hierarchy: library code raises these, only the CLI maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capsim.textsafe import visible

#: The most characters of one message, or of one key path, shown to the user: a scenario may hold
#: megabytes in one value, and an error message never echoes all of it back.
MAX_SHOWN = 1000


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` with its middle cut out when it is longer than `limit` (the remedy at the end stays)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}[... {len(text) - head - tail:,} characters not shown ...]{text[-tail:]}"


class CapsimError(Exception):
    """Base class of every error capsim raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, located in its file.

    `path` is the dotted key path (``tiers.app.instances``); `line` and `column` are 1-based and
    0 when unknown.
    """

    message: str
    file: str = "<scenario>"
    line: int = 0
    column: int = 0
    path: str = ""

    def format(self) -> str:
        # The file name, the key path and the message may quote the user's data: control
        # characters are shown as escapes, so none reaches a terminal or a CI log raw.
        where = visible(self.file)
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        key = f" {clip(visible(self.path), 200)}:" if self.path else ""
        return f"{clip(where, 300)}:{key} {clip(visible(self.message))}"


@dataclass
class ScenarioError(CapsimError):
    """The scenario is invalid; carries every problem found, each with file:line:col."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = 2

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class UsageError(CapsimError):
    """A command-line option or argument is invalid."""

    exit_code = 2


class SimulationError(CapsimError):
    """The run could not complete (for example a resource limit was hit)."""

    exit_code = 3


class Interrupted(CapsimError):
    """The user stopped the run (Ctrl-C or SIGTERM). `runs` holds the replications completed
    before it stopped (possibly none), `requested` how many were asked for; `report`, when the
    library could summarise them, their partial summary."""

    exit_code = 130

    def __init__(self, message: str, runs: list[Any] | None = None, requested: int = 0) -> None:
        super().__init__(message)
        self.runs: list[Any] = list(runs or [])
        self.requested = requested
        self.report: Any = None
        #: For a search (saturate, sweep): plain lines describing the points it completed.
        self.completed_points: list[str] = []
        #: For a batch of several models: the index of each model whose replications all
        #: completed, with its results.
        self.completed_models: dict[int, Any] = {}


class ResourceLimitError(SimulationError):
    """The run would exceed a resource limit; the message says which and how to raise it."""

    exit_code = 3

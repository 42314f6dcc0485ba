"""The error hierarchy: library code raises these, only the CLI maps them to exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


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


class ResourceLimitError(SimulationError):
    """The run would exceed a resource limit; the message says which and how to raise it."""

    exit_code = 3

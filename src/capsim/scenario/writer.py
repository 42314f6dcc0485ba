"""Writing a scenario as YAML text with a comment above each figure saying where it came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

#: Keys whose values are written inline (`{dist: gamma, mean: 8ms, cv: 0.5}`), as people write them.
_INLINE_KEYS = ("service_time", "think_time", "publish_time")


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, sort_keys=False)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def _comment(text: str, indent: str) -> list[str]:
    lines = []
    for paragraph in text.split("\n"):
        lines.append(f"{indent}# {paragraph}".rstrip())
    return lines


def render_scenario_yaml(
    scenario: Mapping[str, Any],
    notes: Mapping[Path_, str] | None = None,
    header: Sequence[str] = (),
) -> str:
    """YAML text of `scenario`; each note becomes a comment above the key at its path."""
    notes = notes or {}
    lines = [f"# {line}".rstrip() for line in header]
    _mapping(scenario, (), 0, notes, lines)
    return "\n".join(lines) + "\n"


def _mapping(
    data: Mapping[str, Any], path: Path_, depth: int, notes: Mapping[Path_, str], lines: list[str]
) -> None:
    indent = "  " * depth
    for key, value in data.items():
        here = (*path, key)
        if here in notes:
            lines.extend(_comment(notes[here], indent))
        label = _flow(key)
        if isinstance(value, Mapping) and value and key not in _INLINE_KEYS:
            lines.append(f"{indent}{label}:")
            _mapping(value, here, depth + 1, notes, lines)
        elif isinstance(value, list) and value:
            lines.append(f"{indent}{label}:")
            for item in value:
                lines.append(f"{indent}  - {_flow(item)}")
        else:
            lines.append(f"{indent}{label}: {_flow(value)}")

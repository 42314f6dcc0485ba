"""Writing a scenario as YAML text with a comment above each figure saying where it came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from capsim.scenario.loader import implicit_value

Path_ = tuple[str | int, ...]

#: Keys whose values are written inline (`{dist: gamma, mean: 8ms, cv: 0.5}`), as people write them.
_INLINE_KEYS = ("service_time", "think_time", "publish_time")


class ScenarioDumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes every text capsim's loader would read as something else.

    PyYAML quotes by YAML 1.1's rules, but capsim reads plain scalars YAML 1.2 style: `1e3` is a
    number to capsim and left plain by PyYAML, so a name `1e3` came back as 1000.0.
    """


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if not isinstance(implicit_value(value), str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


ScenarioDumper.add_representer(str, _represent_text)


def dump_yaml(data: Any) -> str:
    """`data` as block YAML that capsim's loader reads back as the same values."""
    return yaml.dump(data, Dumper=ScenarioDumper, sort_keys=False, allow_unicode=True)


def _flow(value: Any) -> str:
    text = yaml.dump(
        value, Dumper=ScenarioDumper, default_flow_style=True, width=1_000_000, sort_keys=False
    )
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

"""libyaml composes small scenario texts; what capsim reads from them, and every error it gives
with its line and column, is exactly what the pure-Python parser gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capsim.errors import ScenarioError
from capsim.scenario import loader

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))


def read_with(text: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What parse_yaml_text gives for `text`: the data and positions, or the problems."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(loader, "_compose_fast", lambda _text: (False, None))
        try:
            document = loader.parse_yaml_text(text, "s.yaml")
        except ScenarioError as error:
            return [(p.message, p.line, p.column, p.path) for p in error.problems]
        return document.data, document.positions, document.key_positions


def test_libyaml_reads_the_bundled_scenarios():
    assert loader.yaml.__with_libyaml__, "PyYAML without libyaml: every text takes the slow path"
    assert BUNDLED
    for path in BUNDLED:
        composed, _ = loader._compose_fast(path.read_text(encoding="utf-8"))
        assert composed, path.name


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_a_bundled_scenario_reads_the_same_by_both_parsers(path, monkeypatch):
    text = path.read_text(encoding="utf-8")
    assert read_with(text, fast=True, monkeypatch=monkeypatch) == read_with(
        text, fast=False, monkeypatch=monkeypatch
    )


CASES = {
    "an empty value in a flow mapping (libyaml places it at the comma)": "a: {b: , c: 1}\n",
    "an empty value in a block mapping": "a:\nb: 2\n",
    "a question mark inside a flow plain scalar (PyYAML refuses it)": "a: {mean?: 1}\n",
    "a tab between flow items (PyYAML refuses it)": "a: [1,\t2]\n",
    "a syntax error": "a: [1, 2\nb: 3\n",
    "a duplicate key": "a: 1\na: 2\n",
    "an unpaired surrogate escape": 'a: "\\ud800"\n',
    "an undefined alias": "a: *nowhere\n",
    "a python tag": "a: !!python/object:os.system x\n",
    "a recursive alias": "a: &x [*x]\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "nesting past libyaml's depth limit": "a: " + "[" * 1500 + "]" * 1500 + "\n",
    "a control character": "a: b\x07\n",
    "merge keys and anchors": "d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  y: 3\n",
    "folded and literal blocks": "a: >\n  one\n  two\n\nb: |-\n  x\n   y\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_a_tricky_text_reads_the_same_by_both_parsers(text, monkeypatch):
    assert read_with(text, fast=True, monkeypatch=monkeypatch) == read_with(
        text, fast=False, monkeypatch=monkeypatch
    )


def test_a_text_that_could_hold_too_many_nodes_is_counted_by_the_python_parser(monkeypatch):
    text = "[" + ",".join(["1"] * (loader.FAST_MAX_CHARS // 2 + 1)) + "]"
    assert len(text) > loader.FAST_MAX_CHARS
    assert loader._compose_fast(text) == (False, None)
    with monkeypatch.context() as patch:
        patch.setattr(loader, "MAX_NODES", 1000)
        with pytest.raises(ScenarioError, match="more than 1,000 values"):
            loader.parse_yaml_text(text, "s.yaml")

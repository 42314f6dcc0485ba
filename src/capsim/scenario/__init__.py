"""The scenario layer: YAML scenario files in, a validated `Scenario` out, every problem located."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from capsim.errors import Problem, ScenarioError
from capsim.scenario.loader import Document, format_path, parse_yaml_text, read_yaml_file
from capsim.scenario.overrides import apply_overrides
from capsim.scenario.references import reference_problems
from capsim.scenario.schema import (
    Scenario,
    locate,
    problems_from_validation_error,
    scenario_json_schema,
)
from capsim.scenario.semantics import check_scenario

__all__ = [
    "Scenario",
    "check_scenario",
    "format_path",
    "load_scenario",
    "scenario_from_document",
    "scenario_json_schema",
    "validate_file",
    "validate_text",
]


def scenario_from_document(
    document: Document, base_dir: Path, origins: dict[tuple[str | int, ...], str] | None = None
) -> Scenario:
    """Validate parsed data; raises ScenarioError with every schema problem, located."""
    origins = origins or {}
    if not isinstance(document.data, dict):
        what = "a list" if isinstance(document.data, list) else "a single value"
        problem = locate(
            f"the top level of a scenario must be a mapping (name:, traffic:, tiers:), not {what}",
            (),
            document.file,
            document.positions,
            document.key_positions,
            origins,
        )
        raise ScenarioError([problem])
    try:
        scenario = Scenario.model_validate(document.data, context={"base_dir": base_dir})
    except ValidationError as error:
        raise ScenarioError(
            problems_from_validation_error(
                error, document.file, document.positions, document.key_positions, origins
            )
        ) from None
    scenario.attach_source(
        document.file, base_dir, document.positions, document.key_positions, origins
    )
    return scenario


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override (``--set PATH=VALUE``) and validate a scenario file.

    Raises ScenarioError listing every problem found, each with file:line:col.
    """
    document = read_yaml_file(path)
    applied = apply_overrides(document, overrides)
    if applied.problems:
        raise ScenarioError(applied.problems)
    try:
        return scenario_from_document(document, Path(path).resolve().parent, applied.origins)
    except ScenarioError as error:
        # The same problems as `capsim validate` (a run once reported 2 where validate said 3).
        found = _with_references(error.problems, document, applied.origins)
        raise ScenarioError(applied.explained(found)) from None


def validate_file(path: str | Path, overrides: Sequence[str] = ()) -> list[Problem]:
    """Every problem of a scenario file (syntax, schema and meaning); empty when it is valid.

    When the schema fails, unknown tier and class names are still reported from the raw data,
    so one run of `capsim validate` shows as much as it can.
    """
    try:
        document = read_yaml_file(path)
    except ScenarioError as error:
        return list(error.problems)
    return _document_problems(document, path, overrides)


def validate_text(text: str, path: str | Path) -> list[Problem]:
    """Every problem of a scenario's `text`, as if it were the file at `path` (samples files are
    looked up beside it): a scenario capsim writes is checked before anything is written."""
    try:
        document = parse_yaml_text(text, str(path))
    except ScenarioError as error:
        return list(error.problems)
    return _document_problems(document, path, ())


def _document_problems(
    document: Document, path: str | Path, overrides: Sequence[str]
) -> list[Problem]:
    applied = apply_overrides(document, overrides)
    if applied.problems:
        return applied.problems
    try:
        scenario = scenario_from_document(document, Path(path).resolve().parent, applied.origins)
    except ScenarioError as error:
        return applied.explained(_with_references(error.problems, document, applied.origins))
    return applied.explained(check_scenario(scenario))


def _with_references(
    problems: Sequence[Problem], document: Document, origins: dict[tuple[str | int, ...], str]
) -> list[Problem]:
    """The schema's problems and, read from the raw data, the unknown tier and class names
    the schema could not reach, in file order: one run shows as much as it can."""
    found = list(problems)
    seen = {(p.line, p.column, p.path) for p in found}
    for extra in reference_problems(document, origins):
        if (extra.line, extra.column, extra.path) not in seen:
            found.append(extra)
    return sorted(found, key=lambda p: (p.file, p.line, p.column))

"""The committed JSON Schema is exactly what the pydantic models generate (CI fails on drift)."""

from __future__ import annotations

import json
from importlib import resources

from capsim.scenario import scenario_json_schema
from capsim.scenario.schema import render_json_schema

REGENERATE = "python -m capsim.scenario > src/capsim/schema/scenario.schema.json"


def _committed() -> str:
    return resources.files("capsim").joinpath("schema/scenario.schema.json").read_text("utf-8")


def test_the_committed_schema_matches_the_models() -> None:
    assert _committed() == render_json_schema(), (
        f"src/capsim/schema/scenario.schema.json is out of date; regenerate it with: {REGENERATE}"
    )


def test_the_schema_is_the_parsed_committed_file() -> None:
    assert json.loads(_committed()) == scenario_json_schema()


def test_the_schema_documents_units_as_numbers_or_strings_with_patterns() -> None:
    schema = scenario_json_schema()
    app_tier = schema["$defs"]["ServiceTier"]["properties"]
    timeout = app_tier["timeout"]["anyOf"][0]
    assert [option["type"] for option in timeout["anyOf"]] == ["number", "string"]
    assert "pattern" in timeout["anyOf"][1] and "duration" in timeout["description"]
    rate = schema["$defs"]["TrafficSpec"]["properties"]["rate"]["anyOf"][0]
    assert "800/s" in rate["examples"]


def test_the_schema_forbids_unknown_keys_and_names_the_required_ones() -> None:
    schema = scenario_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "traffic", "tiers"}
    assert schema["$defs"]["ServiceTier"]["required"] == ["service_time"]
    assert schema["$defs"]["SloSpec"]["properties"]["class"]

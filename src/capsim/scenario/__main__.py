"""Print the scenario JSON Schema: ``python -m capsim.scenario > src/capsim/schema/scenario.schema.json``."""

from capsim.scenario.schema import render_json_schema

print(render_json_schema(), end="")

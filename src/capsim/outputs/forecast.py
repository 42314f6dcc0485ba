"""Renderer of `capsim forecast` (table, JSON, Markdown); figures defined in docs/forecast.md."""

from __future__ import annotations

import json
from typing import Any

from capsim.errors import UsageError
from capsim.outputs import cells
from capsim.outputs.capacity import Block, _markdown, _table
from capsim.outputs.escape import terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH


def _growth_line(growth: dict[str, Any]) -> str:
    text = f"growth {cells.percent(growth['monthly'])}/month (compound, from {growth['source']})"
    fit = growth.get("fit")
    if fit:
        low, high = fit["monthly_ci95"]
        text += (
            f" · 95% interval {cells.percent(low)} .. {cells.percent(high)}/month"
            f" · R² {fit['r2']:.3f} over {fit['points']} peaks"
        )
    return text


def _capacity_text(tiers: dict[str, Any]) -> str:
    parts = []
    for name, t in tiers.items():
        of = t.get("sized")
        value = t.get(of) if of else t.get("instances")
        parts.append(f"{name} {value}" + (f" {of}" if of else ""))
    return ", ".join(parts)


def _views(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    code = data.get("currency")
    breach = data["first_slo_breach"]
    lines = [
        f"scenario {data['scenario']} · from {data['from']} until {data['until']} · "
        f"{cells.rate(data['offered_rate'])} open traffic now",
        _growth_line(data["growth"]),
        "first SLO breach: "
        + (
            f"{breach['date']} ({breach['slo']}, above {cells.rate(breach['rate'])})"
            + (f" on event {breach['by_event']}" if breach.get("by_event") else "")
            if breach["date"]
            else "not determined: no rate met every SLO (see the notes)"
            if not breach.get("determined", True)
            else "none inside the horizon"
            + (f" (SLOs hold up to {cells.rate(breach['rate'])})" if breach["rate"] else "")
        ),
    ]
    tier_rows = [
        [
            name,
            cells.rate(t["saturation_rate"]),
            t["saturates_on"] or "not inside the horizon",
            t.get("by_event") or cells.MISSING,
        ]
        for name, t in data["tiers"].items()
    ]
    blocks: list[Block] = [("Tiers", ["tier", "saturates at", "saturates on", "event"], tier_rows)]
    if data["plan"]:
        plan_rows = [
            [
                step["date"],
                step["why"],
                f"{step['load']:.3g}x",
                cells.rate(step["rate"]),
                _capacity_text(step["tiers"]) if step["tiers"] else f"none: {step['error']}",
                cells.money(step["cost_per_month"], code),
                "yes" if step["verified"] else "NO",
            ]
            for step in data["plan"]
        ]
        blocks.append(
            (
                "Capacity plan",
                ["date", "step", "load", "rate", "capacity", "cost/month", "verified"],
                plan_rows,
            )
        )
    return lines, blocks


def render_forecast(
    data: dict[str, Any], fmt: str, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """A forecast in format `fmt` (table, json or markdown)."""
    name = fmt.lower()
    if name == "json":
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    if name == "table":
        data = terminal_data(data)
    lines, blocks = _views(data)
    notes = list(data.get("notes", []))
    if name == "table":
        return _table(lines, blocks, notes, color, width)
    if name in ("markdown", "md"):
        return _markdown("forecast", data, lines, blocks, notes)
    raise UsageError(f"capsim forecast prints table, json or markdown, not {fmt!r}")

"""Which group of a database `capsim size` sizes when the scenario does not say: the one that binds.

A database with read replicas is two station groups, its primaries taking the writes and its
replicas the reads, and its `utilization`/`occupancy` objectives (and the headroom) are judged
on the busiest of them (busiest_group.py). Sizing its primaries when its replicas bind moves
nothing: `scenarios/web-shop.yaml` at `--load 2x` has its two replicas 71.8% held against a
70% objective while its primary is 26% held, and a search that grew the primary stalled with
exit 1. So a database with replicas and no `sizing` key is sized by its busiest group at the
sizing load, as `capsim solve` estimates it there (docs/capacity.md, "Which quantity is sized").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capsim.analysis.solve import solve
from capsim.errors import CapsimError
from capsim.model.types import Model, Tier

#: The sized quantity that adds servers to each group of a database.
QUANTITY_OF_GROUP = {"primary": "instances", "replicas": "replicas"}
GROUP_WORDS = {"primary": "primaries", "replicas": "replicas"}


@dataclass(frozen=True)
class GroupChoice:
    """The quantity a database is sized by, and the sentence that says why."""

    of: str
    note: str


def database_groups_to_size(model: Model, capsim_version: str) -> dict[str, GroupChoice]:
    """Per database with replicas and no `sizing` key, the group that binds at `model`'s load
    (its busiest by `solve`'s estimate); databases without replicas have one group, their
    primaries, and are left out. An unsolvable model leaves every database to its primaries."""
    candidates = [
        tier for tier in model.tiers
        if tier.kind == "database" and tier.replicas > 0 and tier.sizing is None
        and not tier.synthetic
    ]  # fmt: skip
    if not candidates:
        return {}
    try:
        data = solve(model, capsim_version=capsim_version, mark_overload=True)
    except (CapsimError, ArithmeticError, ValueError):
        return {}
    choices = {}
    for tier in candidates:
        shares = _group_shares(data["tiers"].get(tier.name) or {})
        if shares:
            choices[tier.name] = _choice(tier, shares)
    return choices


def _group_shares(entry: dict[str, Any]) -> dict[str, float]:
    """Each group's share of its workers held (an overloaded group counts as full)."""
    shares = {}
    for name, group in (entry.get("groups") or {}).items():
        if name not in QUANTITY_OF_GROUP or not isinstance(group, dict):
            continue
        held = max(float(group.get("utilization") or 0.0), float(group.get("occupancy") or 0.0))
        shares[name] = 1.0 if group.get("stable") is False else held
    return shares


def _choice(tier: Tier, shares: dict[str, float]) -> GroupChoice:
    """The busiest group's quantity (primaries on a tie: writes cannot move to replicas)."""
    busiest = max(shares, key=lambda name: (shares[name], name == "primary"))
    of = QUANTITY_OF_GROUP[busiest]
    figures = ", ".join(
        f"{GROUP_WORDS[name]} {share:.1%} held" for name, share in sorted(shares.items())
    )
    other = "replicas" if of == "instances" else "instances"
    # A region's copy (`db@eu-west`) takes its sizing from the scenario's tier (`db`).
    written = tier.name.removesuffix(f"@{tier.region}") if tier.region else tier.name
    note = (
        f"tier {tier.name}: sized by its {GROUP_WORDS[busiest]}"
        f"{' (instances)' if of == 'instances' else ''}, the group that binds at "
        f"this load ({figures}, analytic estimate); --set 'tiers.{written}.sizing={{of: "
        f"{other}}}' sizes the {GROUP_WORDS['replicas' if of == 'instances' else 'primary']} "
        "instead"
    )
    return GroupChoice(of, note)

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

import math
from dataclasses import dataclass
from typing import Any

from capsim.analysis.solve import solve
from capsim.errors import CapsimError
from capsim.model.types import Model, Tier

#: The sized quantity that adds servers to each group of a database.
QUANTITY_OF_GROUP = {"primary": "instances", "replicas": "replicas"}
GROUP_WORDS = {"primary": "primaries", "replicas": "replicas"}
#: The group a sized quantity adds servers to, in words (a second dimension's name).
GROUP_WORDS_OF = {"instances": "primaries", "replicas": "replicas"}


@dataclass(frozen=True)
class GroupChoice:
    """The quantity a database is sized by, and the sentence that says why."""

    of: str
    note: str
    #: The group not sized: its quantity, its count and its share of its workers held.
    other_of: str = ""
    other_count: int = 0
    other_held: float = 0.0


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
    """Each group's share of its workers held; an overloaded group its offered share (its
    offered rate over its throughput bound), at least full."""
    shares = {}
    for name, group in (entry.get("groups") or {}).items():
        if name not in QUANTITY_OF_GROUP or not isinstance(group, dict):
            continue
        held = max(float(group.get("utilization") or 0.0), float(group.get("occupancy") or 0.0))
        if group.get("stable") is False:
            offered, bound = group.get("offered_rate"), group.get("max_rate")
            held = max(1.0, offered / bound if offered and bound else 1.0)
        shares[name] = held
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
    other_group = "replicas" if of == "instances" else "primary"
    count = tier.replicas if other == "replicas" else tier.instances
    return GroupChoice(of, note, other, count, shares.get(other_group, 0.0))


def unsized_group_beyond(tier: Tier, choice: GroupChoice, limit: float) -> str | None:
    """Why `size` cannot answer for `tier` when the group it does not size is already beyond
    `limit` (the share of workers its objectives and the headroom allow) at the sizing load:
    more of the sized group moves no work off it (writes stay on the primaries, reads on the
    replicas), so the search would grow the sized group until it stalls. None when it fits."""
    if not choice.other_of or choice.other_held <= limit or limit <= 0:
        return None
    needed = max(choice.other_count + 1, math.ceil(choice.other_count * choice.other_held / limit))
    written = tier.name.removesuffix(f"@{tier.region}") if tier.region else tier.name
    sized_words = "replicas" if choice.of == "replicas" else "primaries"
    other_words = "replicas" if choice.other_of == "replicas" else "primaries"
    one = "replica" if choice.other_of == "replicas" else "primary"
    return (
        f"tier {tier.name}: both of its groups bind at this load. size sizes one quantity per "
        f"tier, here its {sized_words} (the busier group), but its {choice.other_count} "
        f"{other_words if choice.other_count != 1 else one}"
        f" {'is' if choice.other_count == 1 else 'are'} {choice.other_held:.1%} held (analytic estimate) against the "
        f"{limit:.0%} its objectives and headroom allow, and more {sized_words} take no work "
        f"off them. Give the {other_words} what they need and size again: --set "
        f"'tiers.{written}.{choice.other_of}={needed}' (about "
        f"{choice.other_held * choice.other_count / needed:.0%} held by the same estimate)"
    )


def both_groups_note(tier: Tier, choice: GroupChoice) -> str:
    """The note of a database sized by both its groups in one search."""
    sized = "replicas" if choice.of == "replicas" else "primaries"
    other = "replicas" if choice.other_of == "replicas" else "primaries"
    return (
        f"tier {tier.name}: both of its groups bind at this load (its {other} "
        f"{choice.other_held:.1%} held at {choice.other_count} by the analytic estimate, beside "
        f"its busier {sized}), and more of one takes no work off the other (writes stay on the "
        f"primaries, reads on the replicas): both are sized in the one search, its "
        f"{choice.of} and its {choice.other_of} (in the search's progress: {tier.name}.{other})"
    )

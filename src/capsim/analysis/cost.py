"""What a fleet costs, as FinOps bills it: hourly and monthly, per tier, per class, per million.

Every figure is defined in docs/cost.md. In short, per tier with a `cost` (its `Pricing`):

* instances: the first `reserved` units are committed and paid at (1 - reserved discount) x the
  on-demand price every hour, running or idle; the units above the base pay the on-demand
  price, or the spot price (1 - spot discount) x on-demand. As a cloud applies a reservation per
  clock hour, a measured run is billed per hour of its window: reserved x reserved price +
  max(0, mean billed units - reserved) x the price above the base, the mean taken over the
  window (autoscaled instances from their launch to their stop; an interrupted spot instance is
  not billed until its replacement is up).
* requests: `per_million_requests` x the requests reaching the tier.
* GB-seconds: `per_gb_second` x `memory` (GB of 2^30 bytes) x the seconds its workers are held.
* bytes: `per_gb` x GB (10^9 bytes) of the answers of the requests reaching the tier and
  answered without an error (each class's `response_size`).

A month is 730 hours. A class is charged its share of each tier: by requests for the request
price, by bytes for the byte price, by its service demand (visits x mean service time) for the
instance and GB-second prices. `capsim size` minimises `search_cost`: the instance prices of
the sized quantities at their nominal counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from capsim.engine.result import RunResult
from capsim.model.types import Model, Pricing, Tier
from capsim.model.visits import expected_visits, mean_work

HOURS_PER_MONTH = 730.0
GB = 1e9  # bytes in a GB of transfer, as clouds bill egress


class SizedQuantity(Protocol):
    """What `search_cost` reads of a sized dimension (`analysis.sizing.Dimension`)."""

    @property
    def tier(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def of(self) -> str: ...
    @property
    def unit_cost(self) -> float: ...


def pricing_model(pricing: Pricing) -> str:
    """The tier's pricing model in words: on_demand, reserved, spot, reserved+spot, or usage
    (only request, GB-second or byte prices)."""
    if pricing.on_demand is None:
        return "usage"
    if pricing.reserved and pricing.spot_discount is not None:
        return "reserved+spot"
    if pricing.reserved:
        return "reserved"
    if pricing.spot_discount is not None:
        return "spot"
    return "on_demand"


def reserved_price(pricing: Pricing) -> float:
    """The price of a committed instance-hour."""
    return (pricing.on_demand or 0.0) * (1.0 - pricing.reserved_discount)


def above_base_price(pricing: Pricing) -> float:
    """The price of an instance-hour above the reserved base: spot or on-demand."""
    on_demand = pricing.on_demand or 0.0
    if pricing.spot_discount is not None:
        return on_demand * (1.0 - pricing.spot_discount)
    return on_demand


def instance_cost_per_hour(pricing: Pricing, units: float) -> float:
    """Instances for one hour, `units` of them on average: the reserved base always, the units
    above it at the on-demand or spot price."""
    if pricing.on_demand is None:
        return 0.0
    if not pricing.reserved and pricing.spot_discount is None:
        return units * pricing.on_demand
    base = pricing.reserved
    return base * reserved_price(pricing) + max(0.0, units - base) * above_base_price(pricing)


def billed_units(tier: Tier) -> int:
    """Units a tier pays for: a database's primaries and replicas, a queue's consumers."""
    if tier.kind == "queue":
        return tier.consumers
    return tier.instances + tier.replicas


def _units_with(tier: Tier, of: str, value: int) -> int:
    """The billed units of `tier` with its sized quantity `of` set to `value`."""
    if of == "replicas":
        return tier.instances + value
    if of == "consumers":
        return value
    return value + tier.replicas


def search_cost(model: Model, dims: Sequence[SizedQuantity], values: dict[str, int]) -> float:
    """The cost per hour `capsim size` minimises: each sized quantity's instances under its
    tier's pricing (workers of an instance are not priced). A plain on-demand price is its unit
    cost times the count, as before pricing models existed."""
    total = 0.0
    for d in dims:
        pricing = model.tiers[d.tier].pricing
        if (
            d.of == "concurrency"
            or pricing is None
            or (not pricing.reserved and pricing.spot_discount is None)
        ):
            total += d.unit_cost * values[d.name]
        else:
            units = _units_with(model.tiers[d.tier], d.of, values[d.name])
            total += instance_cost_per_hour(pricing, units)
    return total


def paid_base(tier: Tier, of: str) -> int:
    """The reserved units of `tier` that its sized quantity `of` can run (0: none; workers of
    an instance are not billed units)."""
    if tier.pricing is None or of == "concurrency":
        return 0
    return tier.pricing.reserved


def with_the_paid_base(
    model: Model, dims: Sequence[SizedQuantity], answer: dict[str, int], most: dict[str, int]
) -> dict[str, int]:
    """`capsim size`'s answer running the reserved units it pays for anyway (docs/cost.md,
    `capsim size`): each sized quantity with a reserved base raised until its tier's billed
    units reach the base (`most[name]` at most: the sizing limit). More capacity costs nothing
    below the base, and on a spot tier the units under it are not interrupted."""
    raised = dict(answer)
    for d in dims:
        tier = model.tiers[d.tier]
        short = paid_base(tier, d.of) - _units_with(tier, d.of, answer[d.name])
        if short > 0:
            raised[d.name] = max(answer[d.name], min(answer[d.name] + short, most[d.name]))
    return raised


def paid_base_entries(
    model: Model,
    dims: Sequence[SizedQuantity],
    needed: dict[str, int],
    answer: dict[str, int],
    tiers: dict[str, Any],
) -> tuple[dict[str, int], list[str]]:
    """Say in `capsim size`'s tier entries (in place) where the answer runs a reserved base:
    `needed`, the fewest units meeting the objectives, where the base raised the answer above
    it; and on an autoscaled tier whose `autoscale.min` is below the base, `autoscale_min`, the
    base (the autoscaler never runs fewer than the units paid for). Returns the overrides to
    add (`tiers.T.autoscale.min`) and a note for each tier."""
    overrides: dict[str, int] = {}
    notes: list[str] = []
    for d in dims:
        tier, entry = model.tiers[d.tier], tiers.get(d.name)
        base = paid_base(tier, d.of)
        if entry is None or not base:
            continue
        if answer[d.name] > needed[d.name]:
            entry["needed"] = needed[d.name]
            notes.append(
                f"tier {d.name}: the answer runs {answer[d.name]} {d.of}, the reserved base of "
                f"{base} paid for anyway; {needed[d.name]} would meet the objectives (needed)"
            )
        scaler = tier.autoscale
        if scaler is not None and d.of == "instances" and scaler.min < base:
            entry["autoscale_min"] = min(base, answer[d.name])
            path = str(entry.get("path", f"tiers.{d.name}.autoscale.max"))
            overrides[path.removesuffix(".max") + ".min"] = entry["autoscale_min"]
            notes.append(
                f"tier {d.name}: autoscale.min raised from {scaler.min} to "
                f"{entry['autoscale_min']}, so the {base} reserved instances always run"
            )
    return overrides, notes


def marginal_price(tier: Tier) -> float:
    """The price per hour of one more unit above the reserved base (the search's unit cost)."""
    if tier.pricing is None:
        return tier.cost_per_instance_hour or 0.0
    return above_base_price(tier.pricing)


def priced(model: Model) -> bool:
    return any(tier.pricing is not None for tier in model.tiers)


def _mean_servers(tier: Tier, tier_index: int, runs: Sequence[RunResult]) -> float:
    """Mean live servers over the window, pooled over replications (all of them when none
    died, started or stopped)."""
    measured = sum(run.duration for run in runs)
    live = [run.tiers[tier_index].live_worker_time for run in runs]
    if measured <= 0 or any(value is None for value in live):
        return float(tier.servers)
    return sum(float(value or 0.0) for value in live) / tier.concurrency / measured


def _held_per_second(tier_index: int, runs: Sequence[RunResult]) -> float:
    measured = sum(run.duration for run in runs)
    held = sum(max(r.tiers[tier_index].occupied_time, r.tiers[tier_index].busy_time) for r in runs)
    return held / measured if measured > 0 else 0.0


def _class_rates(data: dict[str, Any], model: Model) -> np.ndarray:
    """Offered requests per second of each class (a closed class: its throughput)."""
    rates = np.zeros(len(model.classes))
    for traffic in model.classes:
        entry = data["classes"].get(traffic.name, {})
        rates[traffic.index] = float(entry.get("offered_rate") or entry.get("throughput") or 0.0)
    return rates


def _answered_rates(data: dict[str, Any], model: Model) -> np.ndarray:
    """Requests per second of each class answered without an error (its throughput): the
    answers whose bytes a `per_gb` price bills. A request refused at once (its region lost, a
    full queue) or failed is sent no answer of `response_size`."""
    rates = np.zeros(len(model.classes))
    for traffic in model.classes:
        entry = data["classes"].get(traffic.name, {})
        rates[traffic.index] = float(entry.get("throughput") or 0.0)
    return rates


def _shares(weights: np.ndarray) -> np.ndarray:
    total = float(weights.sum())
    return weights / total if total > 0 else np.full(weights.shape, 1.0 / max(weights.size, 1))


def run_cost(model: Model, runs: Sequence[RunResult], data: dict[str, Any]) -> dict[str, Any]:
    """The result's `cost` section (docs/cost.md): what the measured run costs per hour and per
    month, per tier and per class, and per million requests. `data` is the summary so far."""
    rates = _class_rates(data, model)
    visits = expected_visits(model)
    demand = mean_work(model) * rates[:, None]
    requests = visits * rates[:, None]
    answered = visits * _answered_rates(data, model)[:, None]
    sizes = np.asarray([c.response_size for c in model.classes], dtype=float)
    tiers: dict[str, Any] = {}
    by_class = np.zeros(len(model.classes))
    for tier in model.tiers:
        pricing = tier.pricing
        if pricing is None:
            continue
        entry = _tier_bill(tier, pricing, runs, data["tiers"].get(tier.name, {}), sizes, answered)
        tiers[tier.name] = entry
        column = tier.index
        with np.errstate(invalid="ignore", over="ignore"):  # a price beyond a float: null
            by_class += (
                entry.get("instances_per_hour", 0.0) + entry.get("gb_seconds_per_hour", 0.0)
            ) * _shares(demand[:, column])
            by_class += entry.get("requests_per_hour", 0.0) * _shares(requests[:, column])
            by_class += entry.get("transfer_per_hour", 0.0) * _shares(answered[:, column] * sizes)
    total = sum(entry["per_hour"] for entry in tiers.values())
    offered = float(rates.sum())
    return {
        "currency": model.currency,
        "hours_per_month": HOURS_PER_MONTH,
        "total_per_hour": total,
        "total_per_month": total * HOURS_PER_MONTH,
        "per_million_requests": _per_million(total, offered),
        "tiers": tiers,
        "classes": {
            traffic.name: {
                "per_hour": float(by_class[traffic.index]),
                "per_month": float(by_class[traffic.index]) * HOURS_PER_MONTH,
                "per_million_requests": _per_million(
                    float(by_class[traffic.index]), float(rates[traffic.index])
                ),
            }
            for traffic in model.classes
        },
    }


def _per_million(per_hour: float, per_second: float) -> float | None:
    """Cost per million requests: per hour / (requests per hour / 10^6)."""
    return per_hour / (per_second * 3600.0 / 1e6) if per_second > 0 else None


def _tier_bill(
    tier: Tier,
    pricing: Pricing,
    runs: Sequence[RunResult],
    figures: dict[str, Any],
    sizes: np.ndarray,
    answered: np.ndarray,
) -> dict[str, Any]:
    """One tier's bill per hour of the measured window (`answered`: each class's requests per
    second answered without an error at each tier, whose bytes `per_gb` bills)."""
    units = _mean_servers(tier, tier.index, runs) * billed_units(tier) / max(tier.servers, 1)
    instances = instance_cost_per_hour(pricing, units)
    arriving = float(figures.get("offered_rate") or 0.0)
    per_request = (pricing.per_million_requests or 0.0) * arriving * 3600.0 / 1e6
    gb_seconds = _held_per_second(tier.index, runs) * pricing.memory_gb * 3600.0
    per_gb_second = (pricing.per_gb_second or 0.0) * gb_seconds
    gb_per_hour = float((answered[:, tier.index] * sizes).sum()) * 3600.0 / GB
    transfer = (pricing.per_gb or 0.0) * gb_per_hour
    per_hour = instances + per_request + per_gb_second + transfer
    entry: dict[str, Any] = {"pricing": pricing_model(pricing)}
    if pricing.on_demand is not None:  # usage-priced tiers bill no instances
        entry.update(units=units, reserved=pricing.reserved, instances_per_hour=instances)
    if pricing.per_million_requests is not None:
        entry["requests_per_hour"] = per_request
    if pricing.per_gb_second is not None:
        entry["gb_seconds_per_hour"] = per_gb_second
    if pricing.per_gb is not None:
        entry.update(transfer_per_hour=transfer, gb_per_hour=gb_per_hour)
    entry.update(per_hour=per_hour, per_month=per_hour * HOURS_PER_MONTH)
    if pricing.interrupts:
        entry["spot_interruptions"] = round(
            sum(run.tiers[tier.index].spot_interruptions for run in runs) / max(len(runs), 1)
        )
    return entry


def spot_figures(tier: Tier, runs: Sequence[RunResult]) -> dict[str, Any]:
    """A tier's `spot` entry: its spot instances, their interruptions in the window (mean per
    replication) and the mean live instances over the window."""
    pricing = tier.pricing
    assert pricing is not None
    slots = tier.autoscale.max if tier.autoscale is not None else tier.servers
    spot = max(0, slots - pricing.reserved)
    return {
        "instances": spot,
        "interruption_rate": pricing.interruption_rate,
        "replace_after": pricing.replace_after,
        "interruptions": round(
            sum(run.tiers[tier.index].spot_interruptions for run in runs) / max(len(runs), 1)
        ),
        "live_instances": _mean_servers(tier, tier.index, runs),
    }


def nominal_tier_cost(tier: Tier) -> float | None:
    """A tier's instance cost per hour at its written counts (None: no instance price)."""
    if tier.pricing is None or tier.pricing.on_demand is None:
        return None
    return instance_cost_per_hour(tier.pricing, billed_units(tier))


def usage_per_hour(bill: dict[str, Any]) -> float | None:
    """A tier's request, GB-second and byte costs per hour from its `cost.tiers` entry (None
    when one is beyond a float: the result shows such a figure as null)."""
    keys = ("requests_per_hour", "gb_seconds_per_hour", "transfer_per_hour")
    parts = [bill.get(key, 0.0) for key in keys]  # a key a tier has no price for is absent
    return None if any(part is None for part in parts) else sum(parts)


def plan_costs(sized: Model, tiers: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """`capsim size`'s cost figures: each tier's `cost_per_hour` and `cost_per_month` (its
    instances at the sized counts, plus its request, GB-second and byte prices at the measured
    load), the totals, and the cost per million requests overall and per class. `tiers` are the
    answer's entries (filled in place); `measured` is the verification run's summary."""
    bill = measured.get("cost") or {"tiers": {}, "classes": {}}
    total: float | None = None
    beyond = False  # a priced tier's cost is beyond a float: no total either
    for tier in sized.tiers:
        entry = tiers.get(tier.name)
        if entry is None:
            continue
        hourly = nominal_tier_cost(tier)
        usage = bill["tiers"].get(tier.name)
        if usage is not None:
            used = usage_per_hour(usage)
            beyond = beyond or used is None
            hourly = None if used is None else used if hourly is None else hourly + used
            entry["pricing"] = usage["pricing"]
        entry["cost_per_hour"] = hourly
        entry["cost_per_month"] = hourly * HOURS_PER_MONTH if hourly is not None else None
        if tier.pricing is not None and tier.pricing.reserved:
            # Committed units the answer does not run: paid for, idle (a smaller commitment
            # would do).
            entry["reserved_idle"] = max(0, tier.pricing.reserved - billed_units(tier))
        if hourly is not None:
            total = hourly if total is None else total + hourly
    if beyond:
        total = None
    offered = sum(c["offered_rate"] for c in measured["classes"].values())
    per_class = _class_shares(bill, measured, total)
    return {
        "total_cost_per_hour": total,
        "total_cost_per_month": total * HOURS_PER_MONTH if total is not None else None,
        "cost_per_million_requests": _per_million(total, offered) if total is not None else None,
        "cost_per_million_requests_by_class": per_class or None,
    }


def _class_shares(
    bill: dict[str, Any], measured: dict[str, Any], total: float | None
) -> dict[str, float | None] | None:
    """Cost per million requests of each class: the plan's total shared as the measured bill
    shares it between classes, over the class's offered requests."""
    shares = [entry["per_hour"] for entry in bill["classes"].values()]
    if total is None or not shares or any(share is None for share in shares):
        return None
    billed = sum(shares)
    if billed <= 0:
        return None
    return {
        name: _per_million(
            entry["per_hour"] / billed * total,
            float(measured["classes"].get(name, {}).get("offered_rate") or 0.0),
        )
        for name, entry in bill["classes"].items()
    }


def spot_notes(model: Model) -> list[str]:
    """What `capsim solve` leaves out: spot interruptions (it counts every instance as up)."""
    notes = []
    for tier in model.tiers:
        pricing = tier.pricing
        if pricing is None or not pricing.interrupts:
            continue
        down = pricing.interruption_rate * pricing.replace_after
        share = down / (1.0 + down)
        notes.append(
            f"{tier.name}: spot interruptions are not modelled (every instance is counted up); "
            f"each spot instance is down about {share:.1%} of the time (r·D / (1 + r·D)): "
            "simulate to see their effect"
        )
    return notes

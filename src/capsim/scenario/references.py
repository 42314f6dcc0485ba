"""Name references checked on the raw YAML data, so that a file with schema errors still gets
its unknown tier and class names reported in the same `capsim validate` run."""

from __future__ import annotations

from typing import Any

from capsim.errors import Problem
from capsim.scenario.loader import Document, PathKey
from capsim.scenario.schema import locate, suggest


def reference_problems(document: Document, origins: dict[PathKey, str]) -> list[Problem]:
    """Unknown tiers and classes named anywhere in the raw data (best effort, never raises)."""
    data = document.data
    if not isinstance(data, dict):
        return []
    tiers: dict[Any, Any] = data["tiers"] if isinstance(data.get("tiers"), dict) else {}
    traffic: dict[Any, Any] = data["traffic"] if isinstance(data.get("traffic"), dict) else {}
    tier_names = [str(name) for name in tiers]
    class_names = [str(name) for name in traffic]
    shields = [
        f"{name}.origin_shield"
        for name, tier in tiers.items()
        if isinstance(tier, dict) and tier.get("type") == "cdn" and tier.get("origin_shield")
    ]
    problems: list[Problem] = []

    def check(name: Any, path: PathKey, valid: list[str], what: str, at_key: bool = False) -> None:
        if not isinstance(name, str) or not valid or name in valid:
            return
        listing = ", ".join(valid[:20]) + (", ..." if len(valid) > 20 else "")
        plural = "classes" if what == "class" else "tiers"
        message = f"unknown {what} {name!r}{suggest(name, valid)} ({plural}: {listing})"
        problems.append(
            locate(
                message,
                path,
                document.file,
                document.positions,
                document.key_positions,
                origins,
                at_key,
            )
        )

    def check_calls(calls: Any, path: PathKey) -> None:
        if not isinstance(calls, list):
            return
        for i, call in enumerate(calls):
            here = (*path, i)
            if isinstance(call, str):
                check(call, here, tier_names, "tier")
            elif isinstance(call, dict):
                if "tier" in call:
                    check(call["tier"], (*here, "tier"), tier_names, "tier")
                if isinstance(call.get("one_of"), dict):
                    for target in call["one_of"]:
                        check(target, (*here, "one_of", target), tier_names, "tier", at_key=True)
                if "parallel" in call:
                    check_calls(call["parallel"], (*here, "parallel"))

    for name, spec in traffic.items():
        if isinstance(spec, dict) and isinstance(spec.get("entry"), dict):
            for target in spec["entry"]:  # a split between entry tiers
                check(target, ("traffic", name, "entry", target), tier_names, "tier", at_key=True)
        elif isinstance(spec, dict):
            check(spec.get("entry"), ("traffic", name, "entry"), tier_names, "tier")
    for name, tier in tiers.items():
        if not isinstance(tier, dict):
            continue
        for key in ("on_miss", "backends"):
            forward = tier.get(key)  # a tier name, or a call mapping {tier: ..., timeout: ...}
            if isinstance(forward, dict):
                check(forward.get("tier"), ("tiers", name, key, "tier"), tier_names, "tier")
            else:
                check(forward, ("tiers", name, key), tier_names, "tier")
        check_calls(tier.get("calls"), ("tiers", name, "calls"))
        overrides = tier.get("classes")
        if isinstance(overrides, dict):
            for class_name, override in overrides.items():
                path = ("tiers", name, "classes", class_name)
                check(class_name, path, class_names, "class", at_key=True)
                if isinstance(override, dict):
                    check_calls(override.get("calls"), (*path, "calls"))
    slos = data.get("slos")
    if isinstance(slos, list):
        for i, slo in enumerate(slos):
            if isinstance(slo, dict):
                check(slo.get("class"), ("slos", i, "class"), class_names, "class")
                check(slo.get("tier"), ("slos", i, "tier"), tier_names + shields, "tier")
    return problems

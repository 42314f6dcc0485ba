"""Fingerprints of engine results: a hash of everything one replication measured.

Used by tests/test_fingerprint.py to pin the numbers of both engine paths while the event
engine's code is rearranged (issue 14). Every case is a scenario file run briefly with a fixed
seed; the hash covers the full RunResult (classes, tiers, histograms, traces, time series,
event count) except wall-clock timings. Floats are hashed by their exact bits (`float.hex`),
arrays by dtype, shape and bytes, so a change in the last bit of any figure changes the hash.

Regenerate the committed hashes (only when a numeric change is intended, and say so in the
commit message):

    PYTHONPATH=$PWD/src:$PWD/tests python tests/fingerprintkit.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from capsim.engine.histogram import Histogram
from capsim.engine.runner import run_replication
from capsim.engine.vectorised import can_vectorise
from capsim.model.build import build_model
from capsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).resolve().parent / "fingerprint" / "expected.json"
#: Replications hashed per case (replication indices 0 .. REPLICATIONS - 1).
REPLICATIONS = 2
#: Fixed seed for every case, whatever the file says.
SEED = 7
#: The brief run: most cases are shortened to this (simulated seconds after the warm-up).
SHORT = ("simulation.duration=5s", "simulation.warmup=1s")
#: Cases whose features act at set times (faults, profiles, autoscalers, warm-up of hedges and
#: retry budgets) run as written: they are short enough.
TIMED = (
    "zone-outage",
    "spike-autoscale",
    "serverless",
    "overload-protection",
    "retry-storm",
    "real-traffic",
    "tail-at-scale",
    "features",
    "calls",
)
LONGER: dict[str, tuple[str, ...]] = {name: () for name in TIMED}


def cases() -> list[Path]:
    """Every bundled scenario, every oracle scenario and every fingerprint-only scenario."""
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "oracles").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "fingerprint").glob("*.yaml"))
    return files


def case_name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _canonical(value: Any) -> Any:
    """A JSON-able form of a result value that keeps every bit of every number."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number.hex() if math.isfinite(number) else repr(number)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.sha256(data.tobytes()).hexdigest()
        return {"dtype": str(data.dtype), "shape": list(data.shape), "sha256": digest}
    if isinstance(value, Histogram):
        return {slot: _canonical(getattr(value, slot)) for slot in Histogram.__slots__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _canonical(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.name != "timings"
        }
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in sorted(value.items())}
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(result: Any) -> str:
    text = json.dumps(_canonical(result), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def case_fingerprints(path: Path) -> dict[str, str]:
    """{"events": hash, "vectorised": hash (where that path can run the case)}."""
    overrides = (f"seed={SEED}", *LONGER.get(path.stem, SHORT))
    model = build_model(load_scenario(path, overrides))
    paths = ["events"]
    if can_vectorise(model)[0]:
        paths.append("vectorised")
    found: dict[str, str] = {}
    for engine_path in paths:
        results = [run_replication(model, r, engine_path) for r in range(REPLICATIONS)]
        found[engine_path] = fingerprint(results)
    return found


def all_fingerprints() -> dict[str, dict[str, str]]:
    return {case_name(path): case_fingerprints(path) for path in cases()}


def main() -> None:
    found = all_fingerprints()
    EXPECTED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(found)} cases to {EXPECTED}", file=sys.stderr)


if __name__ == "__main__":
    main()

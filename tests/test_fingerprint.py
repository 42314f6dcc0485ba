"""The engine's numbers, pinned: every scenario's full result hashes to the committed value.

Each bundled scenario, oracle scenario and fingerprint-only scenario (tests/fingerprint/) is run
briefly with a fixed seed on the event path, and on the vectorised path where it can run; the
hash covers every figure of every replication (tests/fingerprintkit.py). A refactoring of the
engine must leave every hash unchanged. A change that is meant to move the numbers regenerates
tests/fingerprint/expected.json with `PYTHONPATH=$PWD/src:$PWD/tests python
tests/fingerprintkit.py` and says so in its commit message.
"""

from __future__ import annotations

import json

import pytest

from fingerprintkit import EXPECTED, case_fingerprints, case_name, cases

_EXPECTED: dict[str, dict[str, str]] = json.loads(EXPECTED.read_text())


def test_every_scenario_has_a_committed_fingerprint_and_none_is_stale() -> None:
    names = {case_name(path) for path in cases()}
    assert names - set(_EXPECTED) == set(), "scenarios without a fingerprint: regenerate"
    assert set(_EXPECTED) - names == set(), "fingerprints of scenarios that are gone: regenerate"


@pytest.mark.parametrize("path", cases(), ids=case_name)
def test_the_result_of_a_scenario_is_unchanged(path) -> None:  # type: ignore[no-untyped-def]
    name = case_name(path)
    found = case_fingerprints(path)
    expected = _EXPECTED.get(name, {})
    assert set(found) == set(expected), (
        f"{name}: engine paths run {sorted(found)}, fingerprinted {sorted(expected)}"
    )
    for engine_path, digest in found.items():
        assert digest == expected[engine_path], (
            f"{name}: the {engine_path} path's result changed (fingerprint {digest[:12]}, "
            f"expected {expected[engine_path][:12]}); if the change is intended, regenerate with "
            "tests/fingerprintkit.py and say so in the commit"
        )

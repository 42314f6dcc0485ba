"""Story: the verification of a saturate answer says what it is doing while it runs.

The verification runs the scenario's own timeline at the answer (and, when it fails only by
noise, again with more replications): on a profiled scenario those runs took minutes, during
which a CI log showed nothing after "verifying ...". Its runs now report their replications
under their own label, as the search's points do.
"""

from __future__ import annotations

from pathlib import Path

import capsim
from capsim.analysis.saturate import find_saturation

POOL = """\
name: pool
seed: 2
simulation: {duration: 20s, warmup: 2s, replications: 3}
traffic:
  pay: {entry: api, rate: 50/s}
tiers:
  api:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {class: pay, p99: 60ms}
"""


def test_the_verification_reports_its_replications_under_its_own_label(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(POOL)
    said: list[tuple[float, str]] = []
    result = find_saturation(
        capsim.build_model(capsim.load_scenario(path)),
        capsim_version=capsim.__version__,
        progress=lambda fraction, what: said.append((fraction, what)),
    )
    assert result["verification"] is not None
    verifying = [what for _, what in said if what.startswith("verifying")]
    # The announcement, then each replication of the run under the same label.
    assert any("replication" in what for what in verifying), verifying
    assert all(fraction == 0.999 for fraction, what in said if what.startswith("verifying"))

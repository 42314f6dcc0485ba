"""The next-steps footer of `capsim run` asks only for `solve`'s bottleneck: it gets the same
numbers as the full estimates, and a run that meets no station of more than a few servers with
a waiting room never imports scipy (docs/performance.md, "The whole `capsim run` process")."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import gammaln

import capsim
from capsim.analysis.formulas import EXACT_LOG_FACTORIALS, log_factorials
from capsim.analysis.solve import UnstableModelError, solve, solve_bottleneck

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "oracles").glob("*.yaml")
)


def test_log_factorials_are_scipys_gammaln_to_the_last_bit():
    for count in (1, 2, EXACT_LOG_FACTORIALS + 1, EXACT_LOG_FACTORIALS + 2, 300):
        expected = gammaln(np.arange(count) + 1)
        assert log_factorials(count).tolist() == expected.tolist()


def test_the_few_log_factorials_need_no_scipy_and_are_exact_logs_of_factorials():
    few = log_factorials(EXACT_LOG_FACTORIALS + 1)
    assert few.tolist() == [math.log(math.factorial(n)) for n in range(EXACT_LOG_FACTORIALS + 1)]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_bottleneck_alone_is_the_bottleneck_of_the_full_estimates(path: Path):
    model = capsim.build_model(capsim.load_scenario(path, []))
    try:
        full = solve(model, capsim_version="test")["bottleneck"]
    except UnstableModelError as unstable:
        with pytest.raises(UnstableModelError) as alone:
            solve_bottleneck(model)
        assert str(alone.value) == str(unstable)
        return
    assert solve_bottleneck(model) == full


def test_a_run_whose_footer_meets_a_small_mmck_station_imports_no_scipy(tmp_path: Path):
    scenario = tmp_path / "pool.yaml"
    scenario.write_text(
        "name: pool\nseed: 3\nsimulation: {duration: 20s}\n"
        "traffic:\n  web: {entry: api, rate: 40/s}\n"
        "tiers:\n"
        "  api: {type: service, concurrency: 4, service_time: 5ms, calls: [db]}\n"
        "  db:\n    type: database\n    concurrency: 2\n    service_time: 10ms\n"
        "    pool: {size: 4, max_waiting: 30, timeout: 1s}\n"
    )
    code = (
        "import sys\n"
        "from capsim.cli.entry import main\n"
        f"sys.argv = ['capsim', 'run', {str(scenario)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('scipy loaded: %s' % ('scipy' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
        check=False,
    )
    assert "is the bottleneck: the analytic bound" in done.stdout, done.stdout
    assert done.stderr.endswith("scipy loaded: False"), done.stderr

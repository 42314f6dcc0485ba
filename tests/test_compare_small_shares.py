"""`compare` shows a small share with the digits that make its change visible.

A user compared two runs whose error rates were one and three in ten thousand: the table read
`0.0%  0.0%  +0.00 pt (+200.0%)`, a tripling no figure on the row showed. Shares are now shown
with as many decimals as it takes for a nonzero share to show a digit and for two different
shares to read differently.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from capacitykit import mmc_scenario
from capsim.cli.app import app
from capsim.outputs.capacity import percent_decimals

runner = CliRunner()


def _with_errors(folder: Path, name: str, share: str) -> Path:
    path = mmc_scenario(folder, name=name, rate=300, duration="30s")
    text = (
        path.read_text() + f"faults:\n  - {{at: 0s, for: 30s, tier: server, error_rate: {share}}}\n"
    )
    path.write_text(text)
    return path


def test_error_rates_of_one_and_three_in_ten_thousand_read_differently(tmp_path: Path) -> None:
    a = _with_errors(tmp_path, "before", "0.01%")
    b = _with_errors(tmp_path, "after", "0.03%")
    result = runner.invoke(app, ["compare", str(a), str(b), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "| error_rate |" in line)
    row = [cell.strip() for cell in line.strip("|").split("|")]
    shown_a, shown_b, change = row[2], row[3], row[4].split()[0]
    assert shown_a != shown_b, row
    assert float(shown_a.rstrip("%")) > 0 and float(shown_b.rstrip("%")) > 0, row
    assert float(change) > 0, row


def test_everyday_shares_keep_one_decimal_and_equal_ones_stay_equal() -> None:
    assert percent_decimals([0.123, 0.456]) == 1
    assert percent_decimals([0.0, 0.0]) == 1
    assert percent_decimals([0.5, None]) == 1
    assert percent_decimals([0.00011, 0.00033]) == 2
    assert percent_decimals([0.120, 0.1204]) == 2

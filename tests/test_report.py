"""`capsim report`: a sizing report a person can open anywhere, with the plots that matter."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.sizing_report import (
    SizingReport,
    build_sizing_report,
    tier_costs,
)
from capsim.cli.app import app
from capsim.engine.runner import run_replications
from capsim.outputs.report_html import render_report_html
from capsim.outputs.report_markdown import render_report_markdown

runner = CliRunner()

SHOP = """\
name: small-shop
seed: 7
simulation: {duration: 10s, warmup: 1s, replications: 2}
traffic:
  browse: {entry: app, rate: 60/s}
  buy: {entry: app, rate: 10/s}
tiers:
  app:
    type: service
    concurrency: 2
    service_time: {dist: exponential, mean: 8ms}
    calls: [db]
  db: {type: database, concurrency: 2, service_time: {dist: exponential, mean: 4ms}}
slos:
  - {class: browse, p99: 400ms}
  - {class: buy, p95: 300ms}
  - {tier: app, utilization: 80%}
"""
CLASSES = {"browse", "buy"}
TIERS = {"app", "db"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "shop.yaml"
    path.write_text(SHOP)
    return path


def _timeseries(tiers: set[str]) -> dict[str, Any]:
    """A result's `timeseries` (the JSON result (docs/results.md) shape), as the engine will record it."""
    t = [2.0 * i for i in range(12)]
    return {
        "bucket": 2.0,
        "t": t,
        "classes": {
            name: {
                "offered_rate": [50.0] * 12,
                "throughput": [50.0] * 12,
                "error_rate": [0.0] * 12,
                "p99": [None] + [0.05 + 0.01 * k + 0.02 * math.sin(x) for x in t[1:]],
            }
            for k, name in enumerate(sorted(CLASSES))
        },
        "tiers": {
            name: {
                "instances": [1] * 6 + [2] * 6,
                "utilization": [0.3 + 0.2 * math.sin(x / 3 + k) for x in t],
                "occupancy": [0.5] * 12,
                "queue_length": [abs(2 * math.sin(x + k)) for x in t],
                "in_flight": [2 + k + math.cos(x) for x in t],
                "arrivals": [None] + [50.0 * (1 + k)] * 11,  # the first bucket: warm-up
            }
            for k, name in enumerate(sorted(tiers))
        },
    }


@pytest.fixture(scope="module")
def sizing(scenario: Path) -> SizingReport:
    model = capsim.build_model(capsim.load_scenario(scenario))
    return build_sizing_report(model, run_replications(model), capsim_version=capsim.__version__)


@pytest.fixture(scope="module")
def full(sizing: SizingReport) -> SizingReport:
    """The report with every plot: time series as the engine will add them, and prices."""
    result = {**sizing.result, "timeseries": _timeseries(TIERS)}
    costs = {
        "app": {
            "pricing": "on_demand",
            "units": 1.0,
            "per_instance_hour": 0.2,
            "per_hour": 0.2,
            "per_month": 146.0,
        },
        "db": {
            "pricing": "reserved",
            "units": 1.0,
            "per_instance_hour": 0.5,
            "per_hour": 0.5,
            "per_month": 365.0,
        },
    }
    return SizingReport(**{**sizing.__dict__, "result": result, "costs": costs})


def charts(html: str) -> dict[str, set[str]]:
    """chart key -> the names of its series, from the report's inline SVG."""
    found: dict[str, set[str]] = {}
    for match in re.finditer(r'<svg [^>]*data-chart="([^"]+)"(.*?)</svg>', html, re.S):
        found[match.group(1)] = set(re.findall(r'data-series="([^"]+)"', match.group(2)))
    return found


# --- The HTML file ---------------------------------------------------------------------------


def test_the_html_report_stands_alone(full: SizingReport) -> None:
    html = render_report_html(full)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", html), "the report must need no network"
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"\burl\((?!#)", html), "only in-document references"
    assert len(html.encode()) < 300_000


def test_the_report_opens_with_verdicts_and_the_bottleneck(sizing: SizingReport) -> None:
    html = render_report_html(sizing)
    assert 'class="verdict' in html
    assert "Bottleneck: app" in html
    assert "browse p99 &lt;= 400ms" in html and "buy p95 &lt;= 300ms" in html
    for section in ('id="classes"', 'id="tiers"'):
        assert section in html
    assert all(f"<td>{tier}</td>" in html for tier in TIERS)


def test_latency_cdf_and_p99_against_load_carry_every_class(sizing: SizingReport) -> None:
    html = render_report_html(sizing)
    found = charts(html)
    assert found["latency-cdf"] == CLASSES
    assert found["p99-vs-load"] == CLASSES
    load_chart = re.search(r'data-chart="p99-vs-load".*?</svg>', html, re.S)
    assert load_chart is not None
    markers = re.findall(r'data-marker="([^"]+)"', load_chart.group(0))
    assert any(m.startswith("knee ≈ ") for m in markers)
    assert "SLO browse p99 ≤ 400ms" in markers  # the p99 SLO as a horizontal line
    curve = sizing.curve
    assert curve is not None and len(curve["rate"]) >= 5
    assert curve["rate"] == sorted(curve["rate"])
    assert curve["knee"] is not None and curve["rate"][0] < curve["knee"] < curve["rate"][-1]
    assert curve["bottleneck"] == "app" and sizing.bottleneck is not None
    assert sizing.bottleneck["saturation_rate"] == curve["saturation_rate"]
    # Beyond saturation there is no steady state: no p99 is drawn there.
    overloaded = [i for i, stable in enumerate(curve["stable"]) if not stable]
    assert overloaded and all(curve["classes"]["browse"]["p99"][i] is None for i in overloaded)


def test_without_time_series_the_report_says_so_plainly(sizing: SizingReport) -> None:
    html = render_report_html(sizing)
    assert "Time series are not available for this run" in html
    assert not {"occupancy-over-time", "queue-over-time"} & set(charts(html))


def test_time_series_and_prices_become_plots_per_tier(full: SizingReport) -> None:
    found = charts(render_report_html(full))
    for key in ("queue-over-time", "in-flight-over-time", "arrivals-over-time"):
        assert found[key] == TIERS, key
    # Workers held per tier; app and db are held longer than they work in places (occupancy
    # 50% while utilization dips to 10%), so their utilization is drawn dashed beside it.
    assert found["occupancy-over-time"] == TIERS | {f"{name} utilization" for name in TIERS}
    assert found["instances-over-time"] == TIERS  # the instances changed during the run
    assert found["p99-over-time"] == CLASSES
    assert found["cost-per-tier"] == TIERS
    assert "Time series are not available" not in render_report_html(full)


def test_costs_come_from_each_tiers_price_per_billed_unit(tmp_path: Path) -> None:
    priced = SHOP.replace(
        "    calls: [db]\n",
        "    calls: [db]\n    instances: 2\n    cost: {per_instance_hour: 0.25}\n",
    ).replace(
        "service_time: {dist: exponential, mean: 4ms}}",
        "service_time: {dist: exponential, mean: 4ms}, replicas: 1,\n"
        "       cost: {per_instance_hour: 0.5}}",
    )
    path = tmp_path / "priced.yaml"
    path.write_text(priced)
    costs = tier_costs(capsim.build_model(capsim.load_scenario(path)))
    assert costs["app"]["units"] == 2 and costs["app"]["per_hour"] == pytest.approx(0.5)
    assert costs["db"]["units"] == 2  # the primary and its replica
    assert costs["db"]["per_month"] == pytest.approx(730.0)  # 2 units x 0.5 x 730 h
    html = tmp_path / "priced.html"
    result = runner.invoke(app, ["report", str(path), "-o", str(html), "--no-curve"])
    assert result.exit_code == 0, result.output
    assert charts(html.read_text())["cost-per-tier"] == TIERS
    assert 'id="costs"' in html.read_text()


# --- Headless Chromium ----------------------------------------------------------------------


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium() -> str:
    """The browser, installed from Debian's packages by the test setup when it is missing and
    the tests run as root on a machine with apt-get (as on capsim's development machines)."""
    found = _find_chromium()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium"],
        ):
            subprocess.run(command, check=False, capture_output=True, timeout=900)
        found = _find_chromium()
    if found is None:
        pytest.fail(
            "headless Chromium is needed to check that the report renders: install it with "
            "`apt-get install -y chromium` (.ci/run does this)"
        )
    return found


def _paeth_row(line: bytearray, previous: bytes, bpp: int) -> None:
    """Undo PNG's Paeth filter on one row, in place (left to right: each byte needs its left)."""
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
        line[i] = (line[i] + best) & 255


def _png_pixels(data: bytes) -> np.ndarray:
    """The pixels (height x width x channels, uint8) of an 8-bit non-interlaced RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IHDR":
            header = data[position + 8 : position + 8 + length]
        elif kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), "an 8-bit RGB or RGBA screenshot"
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(
        height, stride + 1
    )
    pixels = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along each channel
            row = (
                (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64) % 256)
                .astype(np.uint8)
                .reshape(stride)
            )
        elif kind == 2:  # Up
            row = line + previous
        else:
            work = bytearray(line.tobytes())
            if kind == 3:  # Average
                for i in range(stride):
                    left = work[i - bpp] if i >= bpp else 0
                    work[i] = (work[i] + (left + int(previous[i])) // 2) & 255
            else:
                _paeth_row(work, previous.tobytes(), bpp)
            row = np.frombuffer(bytes(work), dtype=np.uint8)
        pixels[y] = row
        previous = row
    return pixels.reshape(height, width, bpp)


#: Blank pixels added below each figure for the band count.
_FIGURE_GAP = 420
_FIGURE_SPACING = f"figure {{ margin-bottom: {_FIGURE_GAP}px !important; }}"


def _plot_bands(html: str, tmp_path: Path) -> tuple[int, int, np.ndarray]:
    """Open `html` in headless Chromium: (plots in the page, separate bands of the palette's
    blue in the screenshot, the pixels)."""
    page = tmp_path / "report.html"
    # Each figure followed by a blank wider than any gap inside a plot (a chart is 300 px
    # high): the blue of two plots is then never taken for one band, nor the blue of a plot
    # whose lines run at its top and bottom (as its data falls) for two.
    page.write_text(html.replace("</head>", f"<style>{_FIGURE_SPACING}</style></head>", 1))
    screenshot = tmp_path / "report.png"
    plots = len(charts(html))
    height = 700 + plots * (380 + _FIGURE_GAP) + 600
    completed = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size=1000,{height}",
            f"--screenshot={screenshot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert screenshot.exists(), completed.stderr.decode(errors="replace")[-2000:]
    pixels = _png_pixels(screenshot.read_bytes())
    assert pixels.shape[:2] == (height, 1000)
    has_blue = np.all(pixels[:, :, :3] == (0x00, 0x72, 0xB2), axis=2).any(axis=1)
    runs: list[list[int]] = []  # [first row, last row] of each run of blue rows
    for row in np.flatnonzero(has_blue):
        if runs and row - runs[-1][1] <= _FIGURE_GAP - 100:
            runs[-1][1] = int(row)
        else:
            runs.append([int(row), int(row)])
    bands = [
        run
        for run, after in zip(runs, [*runs[1:], None], strict=True)
        if not (run[1] - run[0] < 4 and after is not None and after[0] - run[1] < 200)
    ]
    return plots, len(bands), pixels


def test_every_plot_shows_in_headless_chromium_without_network(
    full: SizingReport, tmp_path: Path
) -> None:
    plots, bands, pixels = _plot_bands(render_report_html(full), tmp_path)
    assert bands == plots == 9
    # And the page is not blank: plenty of dark pixels (text, axes).
    assert int((pixels[:, :, :3].max(axis=2) < 80).sum()) > 5000


def _plot_bands_in_chromium(html: str, tmp_path: Path) -> tuple[int, int]:
    """(plot bands seen on the screenshot, charts in the page), after checking the page is not
    blank (plenty of dark pixels: text, axes)."""
    plots, bands, pixels = _plot_bands(html, tmp_path)
    assert int((pixels[:, :, :3].max(axis=2) < 80).sum()) > 5000
    return bands, plots


# --- The USL of a load test beside the scenario's saturation ----------------------------------


def _usl_data() -> dict[str, Any]:
    """A USL fit to steps of λ = 50/s, σ = 0.04, κ = 0.0005 (N* = 43.8), as `--usl` adds it,
    with capsim saturate's answer beside it."""
    from capsim.analysis.usl import usl_summary
    from capsim.measurements import LoadStep, LoadTest

    users = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96]
    steps = [
        LoadStep("", 0.0, 30.0, n, 0, 0, 50 * n / (1 + 0.04 * (n - 1) + 0.0005 * n * (n - 1)), {})
        for n in users
    ]
    data = usl_summary([LoadTest("steps.csv", "csv", steps, [])], ["steps.csv"])
    data["saturate"] = {
        "scenario": "shop.yaml",
        "class": "browse",
        "saturation_rate": 560.0,
        "bottleneck": "app",
        "difference_from_peak_throughput": (560.0 - data["peak_throughput"])
        / data["peak_throughput"],
    }
    return data


def test_the_usl_section_plots_the_fit_and_puts_saturate_beside_x_max(
    sizing: SizingReport, tmp_path: Path
) -> None:
    report = SizingReport(**{**sizing.__dict__, "usl": _usl_data()})
    html = render_report_html(report)
    assert charts(html)["usl"] == {"measured", "USL fit"}
    svg = re.search(r'<svg [^>]*data-chart="usl".*?</svg>', html, re.S)
    assert svg and "N* = 43.8" in svg.group(0) and "X_max = " in svg.group(0)
    assert "saturate: 560.0/s" in svg.group(0)
    assert "Scalability: the Universal Scalability Law" in html
    assert re.search(
        r"capsim saturate on shop\.yaml \(browse\): saturates at 560.0/s "
        r"\(bottleneck app\), [+-]\d+\.\d% from the USL",
        html,
    )
    text, files = render_report_markdown(report, "r")
    assert "## Scalability: the Universal Scalability Law" in text
    assert any(name.startswith("r-usl.") for name in files)
    assert r"| N\* peak concurrency | 43.82 |" in text


def test_the_usl_plot_shows_in_headless_chromium(sizing: SizingReport, tmp_path: Path) -> None:
    report = SizingReport(**{**sizing.__dict__, "usl": _usl_data()})
    html = render_report_html(report)
    bands, plots = _plot_bands_in_chromium(html, tmp_path)
    assert "usl" in charts(html)
    assert bands == plots


def test_capsim_report_usl_reads_the_load_test_and_runs_saturate_beside_it(
    scenario: Path, tmp_path: Path
) -> None:
    steps = tmp_path / "steps.csv"
    rows = [(n, 40 * n / (1 + 0.05 * (n - 1) + 0.002 * n * (n - 1))) for n in (1, 2, 4, 8, 16, 32)]
    steps.write_text("concurrency,throughput\n" + "".join(f"{n},{x:.2f}\n" for n, x in rows))
    html = tmp_path / "usl.html"
    result = runner.invoke(app, ["report", str(scenario), "-o", str(html), "--usl", str(steps)])
    assert result.exit_code == 0, result.output
    page = html.read_text()
    assert "usl" in charts(page)
    # The scenario's own load curve (its mix of browse and buy) answers for saturate.
    assert "every open class, in the scenario&#x27;s mix): saturates at" in page


def test_capsim_report_refuses_a_usl_file_that_is_no_load_test(
    scenario: Path, tmp_path: Path
) -> None:
    prometheus = tmp_path / "cpu.json"
    prometheus.write_text(
        '{"status": "success", "data": {"resultType": "matrix", "result": '
        '[{"metric": {"service": "app"}, "values": [[1, "0.5"]]}]}}'
    )
    result = runner.invoke(
        app, ["report", str(scenario), "-o", str(tmp_path / "r.html"), "--usl", str(prometheus)]
    )
    assert result.exit_code == 2
    assert "--usl" in result.output and "load test" in result.output
    assert not (tmp_path / "r.html").exists()


# --- Markdown and the command line ----------------------------------------------------------


def test_markdown_embeds_images_written_next_to_it(full: SizingReport, tmp_path: Path) -> None:
    text, files = render_report_markdown(full, "sizing", png=False)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == list(files) and len(images) == 9
    for name in images:
        svg = ET.fromstring(files[name])
        assert svg.get("data-chart") and name == f"sizing-{svg.get('data-chart')}.svg"
    cdf = ET.fromstring(files["sizing-latency-cdf.svg"])
    series = {g.get("data-series") for g in cdf.iter("{http://www.w3.org/2000/svg}g")}
    assert series >= CLASSES
    assert "| app | service |" in text


def test_capsim_report_writes_html_or_markdown_by_extension(scenario: Path, tmp_path: Path) -> None:
    html = tmp_path / "out.html"
    result = runner.invoke(app, ["report", str(scenario), "-o", str(html), "--no-curve"])
    assert result.exit_code == 0, result.output
    found = charts(html.read_text())
    # No load curve was asked for; the engine's time series come with every report.
    assert found["latency-cdf"] == CLASSES and "p99-vs-load" not in found
    assert found["queue-over-time"] == TIERS
    assert found["occupancy-over-time"] >= TIERS
    assert found["p99-over-time"] == CLASSES
    assert "not computed (--no-curve)" in html.read_text()

    markdown = tmp_path / "out.md"
    result = runner.invoke(app, ["report", str(scenario), "-o", str(markdown), "--no-curve"])
    assert result.exit_code == 0, result.output
    assert "](out-latency-cdf." in markdown.read_text()
    assert any(tmp_path.glob("out-latency-cdf.*"))


def test_capsim_report_refuses_bad_input_with_exit_2(scenario: Path, tmp_path: Path) -> None:
    bad = runner.invoke(
        app,
        [
            "report",
            str(scenario),
            "-o",
            str(tmp_path / "r.html"),
            "--set",
            "tiers.app.instances=-1",
        ],
    )
    assert bad.exit_code == 2 and "instances" in bad.output
    nowhere = runner.invoke(
        app, ["report", str(scenario), "-o", str(tmp_path / "no" / "r.html"), "--no-curve"]
    )
    assert nowhere.exit_code == 2 and "cannot write" in nowhere.output


# --- The forecast section (capsim report --forecast FILE) -------------------------------------


def _forecast() -> dict[str, Any]:
    """A `capsim forecast --format json` result for SHOP: 8%/month from 2027-01-01, a
    Black Friday at 3x, app saturating in July, db not within the year, a quarterly plan."""
    plan = [
        ("2027-01-01", "step", 1.0, 2, 146.0),
        ("2027-04-01", "step", 1.26, 2, 146.0),
        ("2027-07-01", "step", 1.58, 3, 219.0),
        ("2027-10-01", "step", 1.99, 4, 292.0),
        ("2027-11-26", "before event 2027-11-26=3x", 6.9, 11, 803.0),
        ("2028-01-01", "step", 2.52, 4, 292.0),
    ]
    return {
        "capsim_version": capsim.__version__,
        "scenario": "small-shop",
        "command": "forecast",
        "from": "2027-01-01",
        "until": "2028-01-01",
        "offered_rate": 70.0,
        "growth": {"monthly": 0.08, "source": "--growth 8%/month", "fit": None},
        "events": [{"date": "2027-11-26", "multiplier": 3.0}],
        "tiers": {
            "app": {"saturation_rate": 110.0, "saturates_on": "2027-07-02", "by_event": None},
            "db": {"saturation_rate": 450.0, "saturates_on": None, "by_event": None},
        },
        "first_slo_breach": {
            "date": "2027-05-20",
            "slo": "browse p99 <= 400ms",
            "rate": 100.0,
            "by_event": None,
            "determined": True,
        },
        "plan": [
            {
                "date": day,
                "why": why,
                "load": load,
                "rate": 70.0 * load,
                "tiers": {"app": {"sized": "instances", "instances": n}},
                "cost_per_hour": month / 730,
                "cost_per_month": month,
                "verified": True,
                "error": None,
            }
            for day, why, load, n, month in plan
        ],
        "currency": "USD",
        "notes": [],
    }


@pytest.fixture(scope="module")
def forecast_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forecast") / "growth.json"
    path.write_text(json.dumps(_forecast()))
    return path


def test_the_forecast_section_dates_saturation_the_breach_and_the_plan_cost(
    full: SizingReport,
) -> None:
    html = render_report_html(SizingReport(**{**full.__dict__, "forecast": _forecast()}))
    section = html[html.index('<h2 id="forecast">') :]
    found = charts(section)
    assert found["forecast-load"] == {"trend", "seasonal events"}
    assert found["forecast-cost"] == {"plan"}
    assert "forecast-saturation" in found
    assert "First SLO breach: 2027-05-20 (browse p99 &lt;= 400ms" in section
    assert "Saturation: app on 2027-07-02." in section
    assert "Not saturated before 2028-01-01: db." in section
    # The dearest step is the day before Black Friday, not the last one.
    assert "at most 803.00 USD (2027-11-26, before event 2027-11-26=3x)" in section
    assert "app (2027-07-02)" in section and "db (" not in section.split("<h3>")[0]


def test_the_forecast_plots_show_in_headless_chromium(full: SizingReport, tmp_path: Path) -> None:
    html = render_report_html(SizingReport(**{**full.__dict__, "forecast": _forecast()}))
    plots, bands, _ = _plot_bands(html, tmp_path)
    assert bands == plots == 9 + 3


def test_capsim_report_adds_the_forecast_of_a_json_file(
    scenario: Path, forecast_file: Path, tmp_path: Path
) -> None:
    html = tmp_path / "out.html"
    args = ["report", str(scenario), "-o", str(html), "--no-curve", "--forecast"]
    result = runner.invoke(app, [*args, str(forecast_file)])
    assert result.exit_code == 0, result.output
    assert {"forecast-load", "forecast-saturation", "forecast-cost"} <= set(
        charts(html.read_text())
    )
    markdown = tmp_path / "out.md"
    result = runner.invoke(
        app,
        [
            "report",
            str(scenario),
            "-o",
            str(markdown),
            "--no-curve",
            "--forecast",
            str(forecast_file),
        ],
    )
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    assert "## Forecast" in text and "](out-forecast-load." in text
    assert "| 2027-11-26 | before event 2027-11-26=3x |" in text
    assert any(tmp_path.glob("out-forecast-cost.*"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"command": "forecast",\n  "scenario": }', "growth.json:2:15: not JSON"),
        ('{"command": "run"}', "not a forecast"),
        (json.dumps({**_forecast(), "scenario": "other"}), "a forecast of scenario 'other'"),
        (json.dumps({k: v for k, v in _forecast().items() if k != "plan"}), "without plan"),
    ],
)
def test_capsim_report_refuses_a_bad_forecast_before_simulating(
    scenario: Path, tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "growth.json"
    bad.write_text(content)
    html = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(scenario), "-o", str(html), "--forecast", str(bad)])
    assert result.exit_code == 2 and message in result.output
    assert not html.exists()

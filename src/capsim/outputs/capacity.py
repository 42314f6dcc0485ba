"""Renderers of the capacity answers: saturate, size, sweep and compare (table, JSON, Markdown)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from capsim.errors import UsageError
from capsim.outputs import cells
from capsim.outputs.escape import markdown_text, terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH, Column, fitted_tables
from capsim.outputs.text import markdown_table, render_csv_data

Block = tuple[str, list[Any], list[list[str]]]  # title, header (str or Column), rows
#: Columns of free text, which may wrap at spaces in a narrow terminal.
PROSE_HEADERS = frozenset({"objective", "one fewer"})


def _verdict(passed: bool | None) -> str:
    passes, fails = cells.RESULT_VERDICTS
    return {True: passes, False: fails, None: cells.MISSING}[passed]


def _slo_rows(slos: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            _verdict(v["passed"]),
            v["slo"],
            cells.slo_observed(v),
            cells.statistic_figure(v.get("statistic"), v.get("upper"))
            + (cells.LOW_SAMPLE_MARK if v.get("low_sample") else ""),
            cells.slo_limit(v),
        ]
        for v in slos
    ]


SLO_HEADER = ["verdict", "objective", "observed", "upper 95%", "limit"]


#: A curve point that met the SLOs in its search run but is not a safe answer.
NOT_SAFE = "unsafe"
NOT_SAFE_MEANING = (
    "in the SLOs met column, the SLOs held in that point's search run, but the rate is above the ceiling "
    "(slo_ceiling, the lower bound of the saturation rate) or failed its verification at "
    "the scenario's run length"
)


def _unsafe_rates(data: dict[str, Any]) -> set[float]:
    """Curve rates that cannot be the answer: above the SLO ceiling, or failed verification."""
    ceiling = data.get("slo_ceiling")
    attempts = (data.get("verification") or {}).get("attempts") or []
    failed = {a["rate"] for a in attempts if not a["meets_slos"]}
    above = {
        p["rate"] for p in data["curve"] if ceiling is not None and p["rate"] > ceiling * (1 + 1e-9)
    }
    return failed | above


def _slos_met_cell(point: dict[str, Any], unsafe: set[float]) -> str:
    if point["meets_slos"] is None:
        return cells.MISSING
    if not point["meets_slos"]:
        return "no"
    return NOT_SAFE if point["rate"] in unsafe else "yes"


def _scaled(data: dict[str, Any]) -> str:
    """` · open traffic at 3x (--load)` when the load offered now was scaled with --load."""
    load = data.get("load")
    return "" if load is None or load == 1 else f" · open traffic at {load:.3g}x (--load)"


def _at_most(data: dict[str, Any]) -> str:
    """` (at most 168)`: the search's bound on its points (docs/capacity.md), when known."""
    bound = (data.get("search") or {}).get("max_points")
    return "" if bound is None else f" (at most {bound})"


def _saturate(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    lines = [
        f"scenario {data['scenario']} · saturation search · {data['replications']} replications × "
        f"{cells.time(data['duration'])} per point · {data['evaluations']} points measured"
        + _at_most(data),
        f"offered now: {cells.rate(data['offered_rate'])} (open classes, mix as written)"
        + _scaled(data),
        f"bottleneck: {data['bottleneck']}, saturates at {cells.rate(data['saturation_rate'])}"
        + (
            f" (at least {cells.rate(data['saturation_rate_low'])})"
            if data.get("saturation_rate_low") is not None
            else ""
        )
        + f" (analytic {cells.rate(data['analytic']['saturation_rate'])})",
        f"knee of p99 ({data['knee_factor']:g}x its low-load value): {cells.rate(data['knee_rate'])}",
        f"highest rate meeting every SLO: {cells.rate(data['max_rate_meeting_slos'])}",
    ]
    verification = data.get("verification")
    if verification:
        lines.append(
            f"verified at the scenario's run length ({cells.rate(verification['rate'])}): "
            + (
                "meets the SLOs"
                if verification["meets_slos"]
                else "FAILS: " + "; ".join(verification["failures"])
            )
        )
    tier_rows = [
        [
            name,
            t.get("held_by", "utilization"),
            cells.rate(t["max_rate"]),
            cells.rate(t.get("max_rate_low")),
            cells.rate(t["max_rate_analytic"]),
        ]
        for name, t in data["tiers"].items()
    ]
    tier_names = list(data["tiers"])
    # Blocking tiers and queues saturate by the workers they hold: occupancy beside utilization.
    held = [n for n in tier_names if data["tiers"][n].get("held_by") == "occupancy"]
    columns = [(f"util {n}", "utilization", n) for n in tier_names]
    for name in held:
        at = next(i for i, c in enumerate(columns) if c[2] == name)
        columns.insert(at + 1, (f"occ {name}", "occupancy", name))
    unsafe = _unsafe_rates(data)
    curve_rows = [
        [
            cells.rate(p["rate"]),
            cells.time(p["p50"]),
            cells.time(p["p99"]),
            cells.percent(p["error_rate"]),
            *(cells.percent((p.get(figure) or {}).get(name)) for _, figure, name in columns),
            "stable" if p["stable"] else "OVERLOADED",
            _slos_met_cell(p, unsafe),
        ]
        for p in data["curve"]
    ]
    if any(p["meets_slos"] and p["rate"] in unsafe for p in data["curve"]):
        lines.append(f"{NOT_SAFE}: {NOT_SAFE_MEANING}")
    p50, p99, which = _curve_latency_headers(data["curve"])
    if which:
        lines.append(which)
    blocks: list[Block] = [
        (
            "Tiers",
            ["tier", "saturates by", "max rate (simulated)", "at least", "max rate (analytic)"],
            tier_rows,
        ),
        (
            "Measured curve",
            [
                "rate",
                p50,
                p99,
                "errors",
                *(header for header, _, _ in columns),
                "status",
                "SLOs met",
            ],
            curve_rows,
        ),
    ]
    if data["slos"]:
        blocks.append(
            ("SLOs at the highest rate meeting them", SLO_HEADER, _slo_rows(data["slos"]))
        )
    return lines, blocks


def _curve_latency_headers(curve: list[dict[str, Any]]) -> tuple[str, str, str]:
    """The curve table's latency headers, and a line saying whose they are: with several
    classes (or a class split by regions) each is the highest over the classes at that rate,
    perhaps of different classes (docs/capacity.md); with one class, that class's."""
    names = sorted({name for point in curve for name in point.get("classes", {})})
    if len(names) <= 1:
        return "p50", "p99", f"curve p50, p99: class {names[0]}" if names else ""
    return (
        "worst p50",
        "worst p99",
        f"curve worst p50, worst p99: the highest over the {len(names)} classes at each rate "
        "(each may be a different class; every class's figures are in the JSON's "
        "curve[].classes)",
    )


def _class_costs(by_class: dict[str, float | None] | None, code: str | None) -> list[str]:
    """One line: the cost per million requests of each class (docs/cost.md)."""
    if not by_class:
        return []
    parts = [f"{name} {cells.money(value, code, 4)}" for name, value in by_class.items()]
    return ["per million requests by class: " + ", ".join(parts)]


def _size(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    cost = data["total_cost_per_hour"]
    per_million = data["cost_per_million_requests"]
    code = data.get("currency")
    lines = [
        f"scenario {data['scenario']} · sizing at {data['load']:g}x load "
        f"({cells.rate(data['offered_rate'])} open traffic)"
        + f" · headroom {cells.percent(data['headroom'] or 0.0)}"
        + f" · redundancy {data['redundancy']}",
        "total cost: "
        + (
            f"{cells.money(cost, code)} per hour, "
            f"{cells.money(data.get('total_cost_per_month'), code)} per month"
            if cost is not None
            else "beyond what can be shown (a price times its quantity overflows)"
            if any("pricing" in t for t in data["tiers"].values())
            else "no tier has a cost"
        )
        + (
            f", {cells.money(per_million, code, 4)} per million requests"
            if per_million is not None
            else ""
        )
        + ("" if code or cost is None else f" ({cells.NO_CURRENCY_NOTE})"),
        *_class_costs(data.get("cost_per_million_requests_by_class"), code),
        "verified by simulation at the scenario's run length: "
        + ("yes" if data["verified"] else "NO — " + "; ".join(data["verification"]["failures"])),
        *_search_cost_line(data.get("search") or {}),
    ]
    rows = []
    for name, t in data["tiers"].items():
        sized = t["sized"]
        rows.append(
            [
                name,
                _sized_label(t),
                str(t[sized]) if sized else str(t["instances"]),
                str(t["was"]) if sized else cells.MISSING,
                cells.percent(t.get("utilization")),
                cells.percent(t.get("occupancy")),
                cells.money(t["cost_per_hour"], code),
                cells.money(t.get("cost_per_month"), code),
                _one_fewer_cell(t.get("one_fewer") or {}),
            ]
        )
        also = t.get("also_sized")
        if also:  # a database whose two groups bind: its second group's row, priced in the first
            of = also["sized"]
            rows.append(
                [f"{name} ({of})", of, str(also[of]), str(also["was"]), *[cells.MISSING] * 4,
                 _one_fewer_cell(also.get("one_fewer") or {})]
            )  # fmt: skip
    blocks: list[Block] = [
        (
            "Tiers",
            [
                "tier",
                "sized",
                "answer",
                "was",
                "utilization",
                "occupancy",
                "cost/hour",
                "cost/month",
                "one fewer",
            ],
            rows,
        ),
        ("SLOs at the answer", SLO_HEADER, _slo_rows(data["slos"])),
    ]
    if data.get("slos_after_loss"):
        blocks.append(
            (
                "SLOs with one instance of each tier lost",
                SLO_HEADER,
                _slo_rows(data["slos_after_loss"]),
            )
        )
    return lines, blocks


def _search_cost_line(search: dict[str, Any]) -> list[str]:
    """What the sizing search cost: simulated points and runs of the answer (docs/capacity.md)."""
    if search.get("runs") is None:
        return []
    equivalents = search.get("run_equivalents")
    return [
        f"search: {search['runs']} simulated points from the {search.get('start', 'lower bounds')} "
        "start" + (f", {equivalents:.1f} runs of the answer" if equivalents is not None else "")
    ]


#: After a tier's figure in the sweep table: the tier is overloaded at that point.
OVERLOAD_MARK = " !"
OVERLOAD_MEANING = "the tier is OVERLOADED at that point (not in steady state, docs/results.md)"


def _sweep(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    paths = [v["path"] for v in data["vary"]]
    lines = [
        f"scenario {data['scenario']} · sweep of {len(data['points'])} points · seed {data['seed']} "
        f"(common random numbers) · {data['replications']} replication(s) × {cells.time(data['duration'])}"
        + (
            f" · open traffic at {data['load']:.3g}x (--load)"
            if data.get("load") not in (None, 1, 1.0)
            else ""
        )
    ]
    if not data["points"]:
        return lines, []
    classes = list(data["points"][0]["classes"])
    tiers = list(data["points"][0]["tiers"])
    # Two-line headers (the class or tier above the figure) keep the columns as narrow as their
    # numbers; a class's four columns stay together when the table is split to fit.
    header: list[Any] = [Column(p, justify="left") for p in paths]
    for name in classes:
        header += [
            Column(f"{name}\n{figure}", group=name)
            for figure in ("throughput", "p50", "p99", "errors")
        ]
    # Tiers whose workers are held longer than they work get occupancy beside utilization.
    held = {
        n
        for n in tiers
        if any(
            (p["tiers"][n].get("occupancy") or 0.0) - (p["tiers"][n]["utilization"] or 0.0) > 0.01
            for p in data["points"]
        )
    }
    for n in tiers:
        header += (
            [Column(f"{figure}\n{n}", group=f"tier {n}") for figure in ("utilization", "occupancy")]
            if n in held
            else [Column(f"utilization\n{n}")]
        )
    header += [Column("SLOs")]
    rows = []
    for point in data["points"]:
        row = [str(point["values"][p]) for p in paths]
        for name in classes:
            c = point["classes"][name]
            row += [
                cells.rate(c["throughput"]),
                cells.time(c["latency"]["p50"]),
                cells.time(c["latency"]["p99"]),
                cells.percent(c["error_rate"]),
            ]
        for n in tiers:
            tier = point["tiers"][n]
            # A database's busiest group, whose share its objectives are judged on.
            mark = (f" ({tier['group']})" if tier.get("group") else "") + (
                "" if tier["stable"] else OVERLOAD_MARK
            )
            row.append(cells.percent(tier["utilization"]) + mark)
            if n in held:
                row.append(cells.percent(tier.get("occupancy")) + mark)
        row.append(
            "pass"
            if point["passed"]
            else "fail (overloaded)"
            if point.get("overloaded")
            else "fail"
        )
        rows.append(row)
    if any(t.get("group") for point in data["points"] for t in point["tiers"].values()):
        lines.append(
            "(primary) or (replicas) after a database's figure: its busiest group's share, on "
            "which its utilization and occupancy objectives are judged (docs/results.md)"
        )
    if any(not t["stable"] for point in data["points"] for t in point["tiers"].values()):
        lines.append(f"{OVERLOAD_MARK.strip()} after a tier's figure: {OVERLOAD_MEANING}")
    return lines, [("What-if", header, rows)]


def _share_of(value: float | None, decimals: int) -> str:
    return cells.MISSING if value is None else f"{value * 100:.{decimals}f}%"


def _figure(metric: str, value: float | None) -> str:
    if metric.startswith(("latency.", "age.")):
        return cells.time(value)
    if metric == "throughput":
        return cells.rate(value)
    if metric.startswith("share_over."):
        return cells.share(value)
    return cells.percent(value)


def _is_percent(metric: str) -> bool:
    return not metric.startswith(("latency.", "age.", "share_over.")) and metric != "throughput"


#: The most decimals a compared percentage is shown with (0.0001%: one in a million).
MOST_PERCENT_DECIMALS = 4


def percent_decimals(values: list[float | None]) -> int:
    """The fewest decimals (at least 1) at which every nonzero share shows a nonzero digit and
    two shares that differ read differently: an error rate of 0.01% against 0.03% once read
    `0.0% → 0.0%, +200%`."""
    shown = [v * 100 for v in values if v is not None]
    for decimals in range(1, MOST_PERCENT_DECIMALS + 1):
        texts = [f"{v:.{decimals}f}" for v in shown]
        visible = all(v == 0 or float(t) != 0 for v, t in zip(shown, texts, strict=True))
        if visible and len(set(texts)) == len(set(shown)):
            return decimals
    return MOST_PERCENT_DECIMALS


def _difference(metric: str, d: dict[str, Any]) -> list[str]:
    diff = d["diff"]
    decimals = percent_decimals([d["a"], d["b"]]) if _is_percent(metric) else 1
    if diff is None:
        shown = cells.MISSING
    elif metric.startswith(("latency.", "age.")):
        shown = ("+" if diff >= 0 else "-") + cells.time(abs(diff))
    elif metric == "throughput":
        shown = cells.rate_difference(diff)
    else:
        shown = f"{diff * 100:+.{max(2, decimals)}f} pt"
    rel = "" if d["rel_diff"] is None else f" ({d['rel_diff'] * 100:+.1f}%)"
    verdict = {True: "beyond noise", False: "within noise", None: "no CI"}[d["significant"]]
    low = d.get("low_sample") or ()
    a, b = (
        (_share_of(d["a"], decimals), _share_of(d["b"], decimals))
        if _is_percent(metric)
        else (_figure(metric, d["a"]), _figure(metric, d["b"]))
    )
    return [
        a + (cells.LOW_SAMPLE_MARK if "a" in low else ""),
        b + (cells.LOW_SAMPLE_MARK if "b" in low else ""),
        shown + rel,
        verdict,
    ]


def _compare(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    a, b = data["a"], data["b"]
    lines = [
        f"A: {a['source']} ({a['kind']}, scenario {a['scenario']}, seed {a['seed']}, "
        f"{a['replications']} replication(s))",
        f"B: {b['source']} ({b['kind']}, scenario {b['scenario']}, seed {b['seed']}, "
        f"{b['replications']} replication(s))",
        "differences are B − A; "
        + (
            "judged by paired t over replications (common random numbers)"
            if data["paired"]
            else "judged by unpaired intervals where both sides have ci95"
        ),
    ]
    header = ["", "figure", "A", "B", "B − A", "noise"]
    class_rows = [
        [name, metric, *_difference(metric, d)]
        for name, metrics in data["classes"].items()
        for metric, d in metrics.items()
    ]
    tier_rows = [
        [name, metric, *_difference(metric, d)]
        for name, metrics in data["tiers"].items()
        for metric, d in metrics.items()
    ]
    flagged = [
        d for section in ("classes", "tiers") for m in data[section].values() for d in m.values()
    ]
    if any(d.get("low_sample") for d in flagged):
        lines.append(cells.LOW_SAMPLE_NOTE)
    if all(d["significant"] is None for d in flagged):
        # No figure has an interval (a single replication): a column of "no CI" says nothing
        # the notes do not say once.
        header = header[:-1]
        class_rows = [row[:-1] for row in class_rows]
        tier_rows = [row[:-1] for row in tier_rows]
    slo_rows = []
    for label in ("a", "b"):
        for failure in data[label].get("overloaded") or []:
            slo_rows.append(
                [label.upper(), _verdict(False), f"tier {failure['tier']} in steady state",
                 "OVERLOADED: " + cells.overload_text(failure)]
            )  # fmt: skip
        for v in data["slos"][label]:
            slo_rows.append([label.upper(), _verdict(v["passed"]), v["slo"], cells.slo_observed(v)])
    # The class (or tier) and the figure name both label a row.
    figure = Column("figure", justify="left")
    blocks: list[Block] = [
        ("Request classes", [Column("class", justify="left"), figure, *header[2:]], class_rows),
        ("Tiers", [Column("tier", justify="left"), figure, *header[2:]], tier_rows),
    ]
    if slo_rows:
        blocks.append(("SLOs", ["side", "verdict", "objective", "observed"], slo_rows))
    return lines, blocks


_VIEWS = {"saturate": _saturate, "size": _size, "sweep": _sweep, "compare": _compare}


def _column(index: int, header: Any) -> Column:
    if isinstance(header, Column):
        return header
    prose = header in PROSE_HEADERS
    return Column(header, justify="left" if index == 0 or prose else "right", prose=prose)


def _one_fewer_cell(fewer: dict[str, Any]) -> str:
    """The size table's "one fewer" cell: the value one unit below and what it did."""
    if fewer.get("meets_slos") is False:
        return f"{fewer['value']}: {fewer['reason']}"
    if fewer:
        return f"{fewer['value']}: {fewer.get('reason', '')}"
    return cells.MISSING


def _sized_label(tier: dict[str, Any]) -> str:
    """The size table's "sized" cell: the quantity sized, `autoscale.max` for an autoscaled
    tier (its answer is the new max), `fixed` for a tier not sized."""
    if not tier["sized"]:
        return "fixed"
    if str(tier.get("path", "")).endswith(".autoscale.max"):
        return "autoscale.max"
    return str(tier["sized"])


def _key_count(columns: list[Column]) -> int:
    """The row labels, repeated in every part of a split table: the leading left-aligned columns."""
    count = 0
    while count < len(columns) and columns[count].justify == "left":
        count += 1
    return max(count, 1)


def _table(lines: list[str], blocks: list[Block], notes: list[str], color: bool, width: int) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
    )
    for line in lines:
        console.print(line, markup=False)
    for title, header, rows in blocks:
        columns = [_column(i, h) for i, h in enumerate(header)]
        for table in fitted_tables(title, columns, rows, width, keys=_key_count(columns)):
            console.print(table)
    for note in notes:
        console.print(f"note: {note}", markup=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _markdown(
    command: str, data: dict[str, Any], lines: list[str], blocks: list[Block], notes: list[str]
) -> str:
    scenario = data.get("scenario") or data.get("a", {}).get("scenario")
    out = [f"# capsim {command}: {markdown_text(str(scenario))}", ""]
    out += [f"{markdown_text(line)}  " for line in lines]
    for title, header, rows in blocks:
        names = [h.header.replace("\n", " ") if isinstance(h, Column) else h for h in header]
        out += ["", f"## {title}", ""]
        out += markdown_table(names, rows, right=range(1, len(names)))
    if notes:
        out += ["", "## Notes", ""] + [f"- {markdown_text(note)}" for note in notes]
    return "\n".join(out) + "\n"


def render_capacity(
    data: dict[str, Any], fmt: str, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """A saturate / size / sweep / compare result in format `fmt` (table, json, markdown, csv)."""
    name = fmt.lower()
    if name == "json":
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    if name == "csv":
        return render_csv_data(data)
    if name == "table":
        data = terminal_data(data)
    command = data["command"]
    lines, blocks = _VIEWS[command](data)
    notes = list(data.get("notes", []))
    if name == "table":
        return _table(lines, blocks, notes, color, width)
    if name in ("markdown", "md"):
        return _markdown(command, data, lines, blocks, notes)
    raise UsageError(f"capsim {command} prints table, json, markdown or csv, not {fmt!r}")

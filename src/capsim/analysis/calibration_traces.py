"""Calibration from OpenTelemetry traces: tiers, classes, rates, self times and calls."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capsim.analysis.calibration_common import (
    Calibration,
    Path_,
    duration_text,
    latency_figures,
    rate_text,
    scenario_name,
)
from capsim.analysis.fitting import DistributionFit, fit_service_time
from capsim.measurements import MeasurementError, Span, Traces

#: A rate is written as a `profile` when its per-bucket counts are over-dispersed for a
#: Poisson process at this level (chi-square dispersion test).
PROFILE_LEVEL = 0.001
PROFILE_BUCKETS = 20


@dataclass
class Visit:
    """Work at one tier for one request: a server (or consumer) span, or a client span whose
    callee is not traced. `calls` are (target tier, start, end, asynchronous)."""

    tier: str
    span: Span
    cls: str
    self_time: float = 0.0
    calls: list[tuple[str, float, float, bool]] = field(default_factory=list)
    nesting: int = 0  # visits to the same tier it is nested under, in its request (a self-call)


@dataclass
class TraceAnalysis:
    visits: list[Visit]
    classes: dict[str, dict[str, Any]]  # class -> entry tier, arrival times
    tier_types: dict[str, str]
    window: tuple[float, float]
    orphans: int = 0  # spans whose parent is not in the files (cut traces), left out
    promoted: int = 0  # orphans taken as roots: the traces' callers are not traced
    #: The share of traces the tracer kept (1.0: unsampled), from the root spans' tracestate:
    #: the number of roots over the traces they stand for (each root 1 / its probability).
    sampling: float = 1.0
    lost: int = 0  # client spans of a traced callee whose server span is not in the files
    #: Spans read more than once (the same trace and span id: an exporter's retried batch, or
    #: overlapping files), each counted once.
    duplicates: int = 0
    #: Consumer spans linked to several producers (a batch of messages consumed at once): each
    #: message is a visit with an equal share of the batch's work.
    batches: int = 0
    #: Traces without a root whose spans lie inside the window, not at its edges: a root an
    #: exporter dropped (or an untraced caller's), whose request the rates do not count.
    rootless: int = 0


#: Sampling probabilities in a tracestate's `ot` entry: the threshold `th` (OpenTelemetry's
#: consistent probability sampling; up to 14 hex digits, trailing zeros dropped) and the older
#: power-of-two `p` value.
_THRESHOLD_BITS = 56


def sampling_probability(trace_state: str) -> float | None:
    """The probability with which a span's trace was kept, as its W3C tracestate says
    (`ot=th:HEX`: 1 - HEX / 2^56; `ot=p:N`: 2^-N), or None when it does not say."""
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key.strip() != "ot":
            continue
        for item in value.split(";"):
            name, _, text = item.partition(":")
            if name == "th" and 1 <= len(text) <= 14:
                try:
                    threshold = int(text.ljust(14, "0"), 16)
                except ValueError:
                    return None
                return 1 - threshold / 2**_THRESHOLD_BITS
            if name == "p" and text.isdigit() and int(text) <= 62:
                return 2.0 ** -int(text)
    return None


def _uninstrumented_tier(span: Span) -> str:
    attributes = span.attributes
    for key in ("peer.service", "db.system", "db.system.name", "server.address", "net.peer.name"):
        if attributes.get(key):
            return scenario_name(str(attributes[key]))
    return scenario_name(f"{span.service}-{span.name}")


def _queue_tier(span: Span) -> str:
    for key in (
        "messaging.destination.name",
        "messaging.destination",
        "messaging.destination_name",
    ):
        if span.attributes.get(key):
            return scenario_name(str(span.attributes[key]))
    return scenario_name(f"{span.service}-queue")


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def analyse_traces(
    traces: Sequence[Traces], class_by: str | None = None, sampling: float | None = None
) -> TraceAnalysis:
    """The traces' visits, classes and window; `sampling` (the share of traces kept) when
    given, else what the root spans' tracestate says (1.0 when it says nothing)."""
    spans, duplicates = _unique_spans(traces)
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    roots: dict[str, Span] = {}
    orphaned: dict[str, list[Span]] = defaultdict(list)
    batches: dict[tuple[str, str], int] = {}  # consumer spans of several messages: how many
    for span in spans:
        parent = (span.trace_id, span.parent_id) if span.parent_id else None
        if parent is None and span.kind == "consumer":
            # A consumer that starts a trace of its own links to the producer it consumed from,
            # or to each producer of the batch of messages it consumed at once.
            linked = [link for link in dict.fromkeys(span.links) if link in by_id]
            for link in linked:
                children[link].append(span)
            if len(linked) > 1:
                batches[(span.trace_id, span.span_id)] = len(linked)
            if linked:
                continue
        if parent is None:
            if span.trace_id not in roots or span.start < roots[span.trace_id].start:
                roots[span.trace_id] = span
        elif parent in by_id:
            children[parent].append(span)
        else:
            orphaned[span.trace_id].append(span)
    promoted = _untraced_callers(roots, orphaned)
    rootless = 0 if promoted else _rootless_inside(roots, orphaned)
    roots.update(promoted)
    orphans = sum(len(group) for group in orphaned.values()) - len(promoted)
    if not roots:
        raise MeasurementError("the traces hold no root span (a span without a parent)")
    classes: dict[str, dict[str, Any]] = {}
    trace_class: dict[str, str] = {}
    entries: dict[str, Span] = {}
    for trace_id, root in roots.items():
        name = str(root.attributes.get(class_by, root.name)) if class_by else root.name
        name = scenario_name(name)
        trace_class[trace_id] = name
        entry = classes.setdefault(name, {"entry": {}, "arrivals": [], "latency": []})
        entry["arrivals"].append(root.start)
        entry["latency"].append(root.duration)
        # A client root (a load generator's or a browser's span) is the user's view of the
        # request; the first server span under it is the entry tier's visit.
        first = root
        if root.kind == "client":
            served = [
                c for c in children.get((root.trace_id, root.span_id), []) if c.kind == "server"
            ]
            if served:
                first = min(served, key=lambda s: s.start)
        entries[trace_id] = first
        tier = _visit_tier(first)
        entry["entry"][tier] = entry["entry"].get(tier, 0) + 1
    visits: list[Visit] = []
    tier_types: dict[str, str] = {}
    traced = {_visit_tier(s) for s in spans if s.kind in ("server", "consumer")}
    lost = 0

    def visit(
        span: Span, tier: str, cls: str, share: float = 1.0, above: tuple[str, ...] = ()
    ) -> None:
        """Record the visit `span` and, depth first, the visits it calls; `share` is this
        request's part of the span's work (1 / its messages for a batch consumer's), `above`
        the tiers of the synchronous visits it is nested under."""
        nonlocal lost
        record = Visit(tier, span, cls, nesting=above.count(tier))
        held = (*above, tier)
        if tier_types.get(tier, "service") == "service":
            tier_types[tier] = _tier_type(span)
        synchronous: list[tuple[float, float]] = []
        stack = list(children.get((span.trace_id, span.span_id), []))
        while stack:
            child = stack.pop()
            if (
                child.kind in ("server", "consumer")
                and child.service != span.service
                and span.kind != "client"
            ):
                record.calls.append((_visit_tier(child), child.start, child.end, False))
                synchronous.append((child.start, child.end))
                visit(child, _visit_tier(child), cls, share, held)
            elif child.kind == "client" and span.kind != "client":
                callees = sorted(
                    (
                        c
                        for c in children.get((child.trace_id, child.span_id), [])
                        if c.kind == "server"
                    ),
                    key=lambda c: c.start,
                )
                target = _visit_tier(callees[0]) if callees else _uninstrumented_tier(child)
                synchronous.append((child.start, child.end))
                if len(callees) > 1:
                    # Attempts under one client span (retried by the client library or a
                    # proxy, or redirected): each server span is a call and a visit.
                    for callee in callees:
                        record.calls.append((_visit_tier(callee), callee.start, callee.end, False))
                        visit(callee, _visit_tier(callee), cls, share, held)
                    continue
                record.calls.append((target, child.start, child.end, False))
                if callees:
                    visit(callees[0], target, cls, share, held)
                elif target in traced and target != _visit_tier(span):
                    # The callee is traced but this call's server span is not in the files
                    # (dropped by the exporter): the call counts, but the client span's
                    # duration (the callee's wait and the network included) is no service time.
                    lost += 1
                else:
                    visit(child, target, cls, share, held)
            elif child.kind == "producer":
                target = _queue_tier(child)
                record.calls.append((target, child.start, child.end, True))
                for consumer in children.get((child.trace_id, child.span_id), []):
                    if consumer.kind == "consumer":
                        messages = batches.get((consumer.trace_id, consumer.span_id), 1)
                        visit(consumer, target, cls, share / messages)
                        tier_types[target] = "queue"
            else:
                stack.extend(children.get((child.trace_id, child.span_id), []))
        start, end = span.start, span.end
        clipped = [
            (max(a, start), min(b, end)) for a, b in synchronous if min(b, end) > max(a, start)
        ]
        record.self_time = max(span.duration - _union_length(clipped), 0.0) * share
        visits.append(record)

    for trace_id, first in entries.items():
        visit(first, _visit_tier(first), trace_class[trace_id])
    starts = [root.start for root in roots.values()]
    return TraceAnalysis(
        visits=visits,
        classes=classes,
        tier_types=tier_types,
        window=(min(starts), max(starts)),
        orphans=orphans,
        promoted=len(promoted),
        sampling=sampling if sampling is not None else _kept_share(roots.values()),
        lost=lost,
        duplicates=duplicates,
        batches=len(batches),
        rootless=rootless,
    )


def _unique_spans(traces: Sequence[Traces]) -> tuple[list[Span], int]:
    """Every span once, the first read of each trace and span id, and how many repeats were
    dropped. OTLP exporters retry a batch whose delivery they could not confirm, so a file can
    hold a span twice; counted twice, it would double its calls and its busy time."""
    seen: set[tuple[str, str]] = set()
    unique: list[Span] = []
    for span in (span for t in traces for span in t.spans):
        key = (span.trace_id, span.span_id)
        if key not in seen:
            seen.add(key)
            unique.append(span)
    return unique, sum(len(t.spans) for t in traces) - len(unique)


def duplicates_warning(count: int) -> str:
    return (
        f"{count} spans were read more than once (the same trace and span id: an exporter's "
        "retried batch, or files that overlap) and counted once"
    )


def _kept_share(roots: Any) -> float:
    """The share of traces kept: roots over the traces they stand for (a root whose tracestate
    gives no probability stands for itself)."""
    count = stands_for = 0.0
    for root in roots:
        probability = sampling_probability(root.trace_state) if root.trace_state else None
        count += 1
        stands_for += 1 / probability if probability and probability > 0 else 1
    return count / stands_for if stands_for else 1.0


def _untraced_callers(roots: dict[str, Span], orphaned: dict[str, list[Span]]) -> dict[str, Span]:
    """Roots for traces whose first span's caller is not traced (a proxy or browser that
    passes a trace context but exports no span): when most traces have no span without a
    parent, each such trace's earliest orphan is its root. Otherwise orphans are traces cut at
    the edges of the export (or spans of an odd caller), and are left out."""
    rootless = [trace for trace in orphaned if trace not in roots]
    if len(rootless) <= len(roots):
        return {}
    return {
        trace: min(orphaned[trace], key=lambda span: (span.start, -span.duration))
        for trace in rootless
    }


def _rootless_inside(roots: dict[str, Span], orphaned: dict[str, list[Span]]) -> int:
    """Traces with spans but no root, all of them more than the longest root span away from
    the window's ends. A cut at the end of an export loses parents (they end last) and leaves
    orphans there; orphans well inside the window lost a root some other way."""
    if not roots:
        return 0
    first = min(root.start for root in roots.values())
    last = max(root.start for root in roots.values())
    longest = max(root.duration for root in roots.values())
    return sum(
        1
        for trace, spans in orphaned.items()
        if trace not in roots
        and min(s.start for s in spans) > first + longest
        and max(s.end for s in spans) < last - longest
    )


def _visit_tier(span: Span) -> str:
    if span.kind == "consumer":
        return _queue_tier(span)
    if span.kind == "client":
        return _uninstrumented_tier(span)
    return scenario_name(span.service)


def _tier_type(span: Span) -> str:
    if span.kind == "consumer":
        return "queue"
    if any(key in span.attributes for key in ("db.system", "db.system.name")):
        return "database"
    return "service"


def _spans_by_instance(visits: list[Visit]) -> dict[str, list[Span]]:
    """A traced tier's visits by the instance that recorded them ({} when any visit is not the
    tier's own span, such as a client span of an untraced callee, or names no instance)."""
    groups: dict[str, list[Span]] = defaultdict(list)
    for v in visits:
        if v.span.kind not in ("server", "consumer") or not v.span.instance:
            return {}
        groups[v.span.instance].append(v.span)
    return dict(groups)


def _untraced_concurrency(visits: list[Visit], peak: int, length: float, sampling: float) -> int:
    """An untraced callee's calls in progress at once: the peak of its callers' CLIENT spans,
    or with sampled traces their mean number (Little's law), whichever is larger."""
    if sampling >= 1.0:
        return peak
    held = sum(s.duration for s in distinct_spans(v.span for v in visits))
    held = held / max(length, 1e-9) / sampling
    return max(peak, math.ceil(held - 1e-9))


def _untraced_concurrency_note(tier: str, count: int) -> str:
    """Why an untraced callee's concurrency is no bound on its workers."""
    return (
        f"{tier} is not traced: its visits are its callers' CLIENT spans, which include the "
        f"wait for it, so the {count} calls in progress at once count waiting calls too: not a "
        "bound on its workers, but enough workers that the model does not queue calls whose "
        "service time already holds their wait"
    )


def distinct_spans(spans: Iterable[Span]) -> list[Span]:
    """Each span once: a batch consumer's span (and what it calls) is a visit of every message
    it consumed, but in progress only once."""
    return list({(s.trace_id, s.span_id): s for s in spans}.values())


def peak_concurrency(spans: list[Span]) -> int:
    spans = distinct_spans(spans)
    events = sorted(
        [(s.start, 1) for s in spans] + [(s.end, -1) for s in spans], key=lambda e: (e[0], e[1])
    )
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return max(peak, 1)


@dataclass(frozen=True)
class RateEstimate:
    rate: float
    low: float
    high: float
    count: int
    window: float
    profile: list[tuple[float, float]] | None
    dispersion_p: float


def estimate_rate(
    arrivals: Sequence[float],
    window: tuple[float, float],
    total: int | None = None,
    sampling: float = 1.0,
) -> RateEstimate:
    """Arrivals per second over `window` with an exact Poisson 95% interval, and per-bucket
    rates when a chi-square dispersion test says the rate changed.

    The window runs from the first to the last root span, so its `total` spans (every class's;
    default: these arrivals) span total - 1 gaps: the rate and its interval are counted over
    the window times total / (total - 1), the window the spans stand for (docs/calibration.md:
    20 spans one every 0.5 s fill 9.5 s and give 2/s, not 20 / 9.5 s = 2.105/s).

    Traces kept with probability `sampling` are a thinned Poisson stream: the rate, its
    interval and the profile are the sampled ones divided by it.
    """
    from scipy import stats

    times = np.sort(np.asarray(arrivals, dtype=float))
    count = times.size
    spans = count if total is None else total
    length = max(window[1] - window[0], 1e-9)
    counted = length * (spans / (spans - 1) if spans > 1 else 1.0) * sampling
    low = stats.chi2.ppf(0.025, 2 * count) / 2 / counted if count else 0.0
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2 / counted
    buckets = min(PROFILE_BUCKETS, max(count // 30, 1))
    profile, p_value = None, 1.0
    if buckets >= 4:
        counts, _ = np.histogram(times, bins=buckets, range=window)
        expected = counts.mean()
        statistic = float(((counts - expected) ** 2).sum() / expected) if expected > 0 else 0.0
        p_value = float(stats.chi2.sf(statistic, buckets - 1))
        if p_value < PROFILE_LEVEL:
            width = length / buckets
            profile = [
                ((k + 0.5) * width, float(c) / width / sampling) for k, c in enumerate(counts)
            ]
    return RateEstimate(
        rate=count / counted,
        low=float(low),
        high=float(high),
        count=count,
        window=length,
        profile=profile,
        dispersion_p=p_value,
    )


def _gaps_text(length: float, spans: int) -> str:
    """How the rate's window was counted: the `spans` root spans of every class, first to last,
    hold spans - 1 gaps, so the rate is over length x spans / (spans - 1)."""
    if spans < 2:
        return ""
    return (
        f" (first to last of {spans:,} root spans, {spans - 1:,} gaps: counted over "
        f"{length * spans / (spans - 1):.4g}s)"
    )


def _sampling_text(sampling: float) -> str:
    if sampling >= 1.0:
        return ""
    return f", traces sampled at {sampling:.4g} (tracestate or --trace-sampling): divided by it"


def distribution_spec(fit: DistributionFit) -> dict[str, Any]:
    spec = dict(fit.spec)
    for key in ("mean", "value"):
        if key in spec:
            spec[key] = duration_text(spec[key])
    if "cv" in spec:
        spec["cv"] = float(f"{spec['cv']:.4g}")
    if "samples" in spec:
        spec["samples"] = [duration_text(x) for x in spec["samples"]]
    return spec


def _fit_note(fit: DistributionFit, what: str) -> str:
    mean = fit.mean
    interval = (
        f"95% CI [{duration_text(mean.low)}, {duration_text(mean.high)}]"
        if math.isfinite(mean.low)
        else "no CI (one sample)"
    )
    return (
        f"{what}: n = {mean.count}, mean {duration_text(mean.mean)} ({interval}), cv {fit.cv:.3g}; "
        f"{fit.family}: {fit.reason}"
    )


#: A visit's calls to one tier beyond the whole `repeat` become a second call with this share
#: or more of the visits (below it, the rounding is within the calls' own sampling noise).
_EXTRA_CALL_SHARE = 0.005

#: Calls are written as `one_of` when no visit makes two of them although, were they
#: independent, at least this many visits would have made both.
_EXCLUSIVE_EVIDENCE = 3


def _exclusive_groups(
    order: list[str], counts: dict[str, list[int]], asynchronous: dict[str, bool], find: Any
) -> list[list[str]]:
    """Groups of synchronous single calls that never happen in the same visit."""
    total = len(next(iter(counts.values()))) if counts else 0
    made = {t: np.array(counts[t]) > 0 for t in order}
    candidates = [
        t
        for t in order
        if not asynchronous.get(t)
        and max(counts[t]) == 1
        and made[t].mean() < 1
        and sum(1 for u in order if find(u) == find(t)) == 1
    ]
    groups: list[list[str]] = []
    for target in candidates:
        for group in groups:
            if all(
                not (made[target] & made[member]).any()
                and made[target].mean() * made[member].mean() * total >= _EXCLUSIVE_EVIDENCE
                for member in group
            ):
                group.append(target)
                break
        else:
            groups.append([target])
    return [group for group in groups if len(group) > 1]


def _count_fan_out(
    calls: list[tuple[str, float, float, bool]], fanned: dict[str, list[int]]
) -> None:
    """For each target called more than once in one visit: count the visit, and whether two of
    its calls overlap in time (a fan-out to copies, rather than calls one after another)."""
    by_target: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for target, start, end, _ in calls:
        by_target[target].append((start, end))
    for target, spans in by_target.items():
        if len(spans) < 2:
            continue
        spans.sort()
        fanned[target][1] += 1
        if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
            fanned[target][0] += 1


def _calls(visits: list[Visit]) -> tuple[list[Any], list[str], dict[str, Any]]:
    """The calls of one tier for one class, with probabilities, repeats, parallel groups (calls
    that overlap in time) and one_of groups (calls that exclude each other)."""
    total = len(visits)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * total)
    offsets: dict[str, list[float]] = defaultdict(list)
    asynchronous: dict[str, bool] = {}
    overlaps: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    fanned: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # same-target calls overlapping
    for k, v in enumerate(visits):
        for target, start, _end, is_async in v.calls:
            counts[target][k] += 1
            offsets[target].append(start - v.span.start)
            asynchronous[target] = is_async
        synchronous = [c for c in v.calls if not c[3]]
        _count_fan_out(synchronous, fanned)
        for i, first in enumerate(synchronous):
            for second in synchronous[i + 1 :]:
                if first[0] == second[0]:
                    continue
                key = tuple(sorted((first[0], second[0])))
                overlaps[key][1] += 1
                if min(first[2], second[2]) > max(first[1], second[1]):
                    overlaps[key][0] += 1
    order = sorted(counts, key=lambda t: (float(np.median(offsets[t])), t))
    group_of = {t: t for t in order}

    def find(t: str) -> str:
        while group_of[t] != t:
            t = group_of[t]
        return t

    for pair, (overlapping, together) in overlaps.items():
        if together and overlapping / together > 0.5:
            group_of[find(pair[1])] = find(pair[0])
    exclusive = _exclusive_groups(order, counts, asynchronous, find)
    items: list[Any] = []
    notes: list[str] = []
    figures: dict[str, Any] = {}
    placed: set[str] = set()
    for target in order:
        if target in placed:
            continue
        group = next((g for g in exclusive if target in g), None)
        if group is not None:
            placed.update(group)
            shares = {member: sum(1 for c in counts[member] if c) / total for member in group}
            items.append({"one_of": {m: float(f"{p:.4g}") for m, p in shares.items()}})
            for member, share in shares.items():
                half = 1.96 * math.sqrt(share * (1 - share) / total)
                figures[member] = {
                    "probability": share,
                    "probability_ci95": [share - half, share + half],
                    "calls_when_called": 1.0,
                    "asynchronous": False,
                }
            notes.append(
                f"one_of: {', '.join(f'{m} in {round(p * total)} of {total} visits' for m, p in shares.items())}, "
                "never two in one visit (independent calls would have met in at least "
                f"{_EXCLUSIVE_EVIDENCE} visits)"
            )
            continue
        members = [t for t in order if find(t) == find(target)]
        placed.update(members)
        specs: list[Any] = []
        extra: dict[str, Any] | None = None
        for member in members:
            calls = np.array(counts[member])
            made = calls[calls > 0]
            probability = made.size / total
            repeat = max(round(float(made.mean())), 1) if made.size else 1
            spec: dict[str, Any] = {"tier": member}
            if probability < 0.9995:
                spec["probability"] = float(f"{probability:.4g}")
            overlapping, several = fanned[member]
            if repeat > 1 and several and overlapping / several > 0.5 and "probability" not in spec:
                # A fan-out to copies of one tier (shards): r branches of one parallel group.
                specs += [member] * (repeat - 1)
                notes.append(
                    f"{member}: its {repeat} calls overlap in time in {overlapping} of {several} "
                    "visits that make several: a parallel fan-out"
                )
                repeat = 1
            extra = None
            if made.size and repeat == round(float(made.mean())):
                # Calls one after another, some visits making more than others (retries): the
                # whole calls as `repeat` and the rest as a second call with its probability,
                # so the callee gets the measured calls per visit, not a rounded figure.
                repeat = max(math.floor(float(made.mean()) + 1e-9), 1)
                share = probability * (float(made.mean()) - repeat)
                if share >= _EXTRA_CALL_SHARE:
                    extra = {"tier": member, "probability": float(f"{share:.4g}")}
            if repeat > 1:
                spec["repeat"] = repeat
            half = 1.96 * math.sqrt(probability * (1 - probability) / total)
            notes.append(
                f"{member}: called in {made.size} of {total} visits (p = {probability:.4f} ± {half:.4f})"
                + (f", {made.mean():.3g} times on average when called" if made.size else "")
                + (" — asynchronous (producer span)" if asynchronous.get(member) else "")
            )
            figures[member] = {
                "probability": probability,
                "probability_ci95": [probability - half, probability + half],
                "calls_when_called": float(made.mean()) if made.size else 0.0,
                "asynchronous": asynchronous.get(member, False),
            }
            specs.append(spec if len(spec) > 1 else member)
            if extra is not None:
                specs.append(extra)
                notes.append(
                    f"{member}: {made.mean():.3g} calls a visit that calls it is {repeat} and, "
                    f"in {extra['probability']:.4g} of the visits, one more"
                )
        if len(members) == 1 and extra is not None:
            items.extend(specs)  # the call and its extra one, one after the other
        elif len(specs) > 1:
            items.append({"parallel": specs})
            if len(members) > 1:
                notes.append(f"parallel: {', '.join(members)} overlap in time in most visits")
        else:
            items.append(specs[0])
    return items, notes, figures


def calibrate_traces(
    traces: Sequence[Traces],
    class_by: str | None = None,
    workers: dict[str, int] | None = None,
    name: str = "calibrated",
    sampling: float | None = None,
) -> Calibration:
    analysis = analyse_traces(traces, class_by, sampling)
    sources = ", ".join(t.source for t in traces)
    workers = workers or {}
    scenario: dict[str, Any] = {"name": name}
    notes: dict[Path_, str] = {}
    summary: dict[str, Any] = {"sources": [t.source for t in traces], "classes": {}, "tiers": {}}
    start, end = analysis.window
    length = end - start
    if not length > 0:
        raise MeasurementError(
            f"{sources}: every root span starts at the same instant, so no arrival rate can be "
            "measured; export traces collected over a period of time"
        )
    warmup = max(min(length * 0.1, 60.0), 1.0)
    scenario["simulation"] = {"duration": duration_text(length), "warmup": duration_text(warmup)}
    notes[("simulation", "duration")] = f"the traces' window: first to last root span ({sources})"
    notes[("simulation", "warmup")] = "10% of the window (at least 1s, at most 60s)"
    traffic: dict[str, Any] = {}
    spans = sum(len(info["arrivals"]) for info in analysis.classes.values())
    for cls, info in sorted(analysis.classes.items()):
        entry = max(info["entry"], key=info["entry"].get)
        estimate = estimate_rate(info["arrivals"], analysis.window, spans, analysis.sampling)
        spec: dict[str, Any] = {"entry": entry, "rate": rate_text(estimate.rate)}
        notes[("traffic", cls, "rate")] = (
            f"{estimate.count} root spans in {length:.4g}s{_gaps_text(length, spans)}"
            f"{_sampling_text(analysis.sampling)}: {estimate.rate:.4g}/s "
            f"(95% CI [{estimate.low:.4g}, {estimate.high:.4g}], Poisson)"
        )
        if estimate.profile:
            # the profile sets the rate: `rate:` repeats its first point (any other value is
            # ignored with a warning on every run); the window's mean stays in the comment
            spec["rate"] = rate_text(estimate.profile[0][1])
            notes[("traffic", cls, "rate")] += (
                "; the profile below sets the rate, so rate: is its first point"
            )
            spec["profile"] = [{"at": "0s", "rate": rate_text(estimate.profile[0][1])}] + [
                {"at": duration_text(warmup + at), "rate": rate_text(rate)}
                for at, rate in estimate.profile
            ]
            notes[("traffic", cls, "profile")] = (
                f"the rate changed (chi-square dispersion p = {estimate.dispersion_p:.2g} < {PROFILE_LEVEL}): "
                f"{estimate.count} arrivals in {len(estimate.profile)} buckets of "
                f"{length / len(estimate.profile):.3g}s, each rate at its bucket's midpoint after "
                "the warm-up (a bucket of n arrivals: 95% CI about n ± 1.96√n)"
            )
        traffic[cls] = spec
        summary["classes"][cls] = {
            "entry": entry,
            "rate": estimate.rate,
            "rate_ci95": [estimate.low, estimate.high],
            "requests": estimate.count,
            "profile": bool(estimate.profile),
            "latency": _root_latency(analysis, cls),
        }
    scenario["traffic"] = traffic
    tiers: dict[str, Any] = {}
    by_tier: dict[str, list[Visit]] = defaultdict(list)
    for v in analysis.visits:
        by_tier[v.tier].append(v)
    for tier in sorted(by_tier):
        tier_visits = by_tier[tier]
        kind = analysis.tier_types.get(tier, "service")
        spec = {"type": kind}
        count_key = "consumers" if kind == "queue" else "concurrency"
        by_instance = _spans_by_instance(tier_visits) if kind != "queue" else {}
        if len(by_instance) > 1:
            spec["instances"] = len(by_instance)
            notes[("tiers", tier, "instances")] = (
                f"{len(by_instance)} instances recorded its spans (resource service.instance.id, "
                "host.name, k8s.pod.name or container.id); balanced round robin"
            )
        peak = (
            max(peak_concurrency(group) for group in by_instance.values())
            if by_instance
            else (peak_concurrency([v.span for v in tier_visits]))
        )
        per = " on one instance" if len(by_instance) > 1 else ""
        untraced = all(v.span.kind == "client" for v in tier_visits)
        if tier in workers:
            spec[count_key] = workers[tier]
            notes[("tiers", tier, count_key)] = "given with --workers" + (
                " (workers per instance)" if per else ""
            )
        elif untraced:
            spec[count_key] = _untraced_concurrency(tier_visits, peak, length, analysis.sampling)
            notes[("tiers", tier, count_key)] = _untraced_concurrency_note(tier, spec[count_key])
        elif analysis.sampling < 1.0:
            # The sampled spans overlap less than all of them did: the mean number in progress
            # (Little's law, each kept span standing for 1 / sampling) still bounds the workers.
            spans_here = distinct_spans(v.span for v in tier_visits)
            held = sum(s.duration for s in spans_here) / max(length, 1e-9)
            mean = held / analysis.sampling / max(len(by_instance), 1)
            bound = max(peak, math.ceil(mean - 1e-9))
            spec[count_key] = bound
            notes[("tiers", tier, count_key)] = (
                f"traces sampled at {analysis.sampling:.3g}: {mean:.3g} {tier} spans in progress "
                f"on average{per} (their durations over the window, divided by the sampling "
                f"share; Little's law), and at most {peak} of the kept spans at once (far below "
                f"the real peak: the spans not kept are missing); both bound the workers from "
                f"below, so at least {bound}. Give the real figure with --workers TIER=N"
            )
        else:
            spec[count_key] = peak
            notes[("tiers", tier, count_key)] = (
                f"the most {tier} spans in progress at once{per} ({peak}): a lower bound on its "
                "workers; give the real figure with --workers TIER=N"
            )
        pooled = fit_service_time(np.array([v.self_time for v in tier_visits]))
        spec["service_time"] = distribution_spec(pooled)
        notes[("tiers", tier, "service_time")] = _fit_note(
            pooled, f"self time of every {tier} span (all classes)"
        )
        classes_here = sorted({v.cls for v in tier_visits})
        tier_summary: dict[str, Any] = {
            "type": kind,
            "instances": spec.get("instances", 1),
            count_key: spec[count_key],
            "visits": len(tier_visits),
            "busy": sum(v.self_time for v in tier_visits) / max(length, 1e-9) / analysis.sampling,
            "deepest_nesting": 1 + max(v.nesting for v in tier_visits),
            "classes": {},
        }
        for cls in classes_here:
            class_visits = [v for v in tier_visits if v.cls == cls]
            fit = (
                fit_service_time(np.array([v.self_time for v in class_visits]))
                if len(classes_here) > 1
                else pooled
            )
            calls, call_notes, call_figures = _calls(class_visits)
            tier_summary["classes"][cls] = {
                "visits": len(class_visits),
                "family": fit.family,
                "mean": fit.mean.mean,
                "mean_ci95": [fit.mean.low, fit.mean.high],
                "cv": fit.cv,
                "candidates": fit.candidates,
                "calls": call_figures,
            }
            if len(classes_here) > 1:
                work: dict[str, Any] = {"service_time": distribution_spec(fit)}
                notes[("tiers", tier, "classes", cls, "service_time")] = _fit_note(
                    fit, f"self time of {tier} spans of class {cls}"
                )
                if calls:
                    work["calls"] = calls
                    notes[("tiers", tier, "classes", cls, "calls")] = "; ".join(call_notes)
                spec.setdefault("classes", {})[cls] = work
            elif calls:
                spec["calls"] = calls
                notes[("tiers", tier, "calls")] = (
                    f"from the span tree of class {cls}: " + "; ".join(call_notes)
                )
        if len(classes_here) > 1:
            pooled_calls, pooled_notes, _ = _calls(tier_visits)
            if pooled_calls:
                classes_spec = spec.pop("classes", None)
                spec["calls"] = pooled_calls
                if classes_spec is not None:
                    spec["classes"] = classes_spec
                notes[("tiers", tier, "calls")] = (
                    "every class pooled (each class below has its own): " + "; ".join(pooled_notes)
                )
        tiers[tier] = spec
        summary["tiers"][tier] = tier_summary
    scenario["tiers"] = tiers
    warnings = _trace_warnings(analysis, spans)
    return Calibration(scenario=scenario, notes=notes, summary=summary, warnings=warnings)


def _trace_warnings(analysis: TraceAnalysis, spans: int) -> list[str]:
    """What the traces lacked or held twice, said once each: duplicated spans, batches,
    orphans, sampling, lost server spans, roots taken from the earliest span."""
    warnings: list[str] = []
    if analysis.duplicates:
        warnings.append(duplicates_warning(analysis.duplicates))
    if analysis.batches:
        warnings.append(
            f"{analysis.batches} consumer spans each consumed several messages (their links name "
            "several producer spans): each message is a visit with an equal share of its batch's "
            "time"
        )
    if analysis.orphans:
        warnings.append(
            f"{analysis.orphans} spans whose parent is not in the files were left out "
            "(traces cut at the edges of the export, or spans of uninstrumented callers)"
            + _rootless_text(analysis.rootless, spans)
        )
    if analysis.sampling < 1.0:
        warnings.append(
            f"the traces were sampled ({analysis.sampling:.4g} of them kept, from the root spans' "
            "tracestate or --trace-sampling): rates are divided by it, self times and calls are "
            "the sampled traces'; workers without --workers are only the mean spans in progress "
            "(Little's law), a lower bound: give --workers"
        )
    if analysis.lost:
        warnings.append(
            f"{analysis.lost} client spans call a traced service whose server span is not in the "
            "files (dropped by the exporter): counted as calls, their durations (the callee's "
            "wait included) not taken as its service time"
        )
    if analysis.promoted:
        warnings.append(
            f"{analysis.promoted} traces have no span without a parent (their caller passed a "
            "trace context but is not traced): the earliest span of each was taken as its root"
        )
    return warnings


def _rootless_text(rootless: int, roots: int) -> str:
    if not rootless:
        return ""
    return (
        f"; {rootless} of those traces lie inside the window, not at its edges: their root "
        "span is missing (dropped by an exporter, or a caller that is not traced, such as a "
        "health check), so the rates do not count them: if they were requests, the rates are "
        f"{rootless / (roots + rootless):.1%} low"
    )


def _root_latency(analysis: TraceAnalysis, cls: str) -> dict[str, float]:
    """Latency as the user sees it: the root spans' durations."""
    return latency_figures(np.array(analysis.classes[cls]["latency"]))

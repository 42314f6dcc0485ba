"""The documentation a user follows: every link resolves, the README leads to every page, and
the getting-started walk runs as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import capsim
from capsim.analysis.headroom import analytic_headroom
from capsim.outputs.table import next_steps

REPO = Path(__file__).parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
GETTING_STARTED = REPO / "docs" / "getting-started.md"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The Markdown without code blocks and inline code, where links are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        found.add(base if seen == 0 else f"{base}-{seen}")
    return found


def links(page: Path) -> list[str]:
    return _LINK.findall(_prose(page.read_text(encoding="utf-8")))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def test_the_slugs_are_githubs() -> None:
    assert slug("Stable or overloaded (`stable`, `growth_rate`)") == (
        "stable-or-overloaded-stable-growth_rate"
    )
    assert slug("10. Two-class priority M/G/1 (Cobham) and the conservation law") == (
        "10-two-class-priority-mg1-cobham-and-the-conservation-law"
    )
    assert slug("`capsim saturate`, `capsim size`") == "capsim-saturate-capsim-size"


def test_the_link_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Part one\n")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#part-one) [gone](missing.md) [bad](a.md#part-two) `[code](x.md)`\n"
        "```\n[fenced](y.md)\n```\n[web](https://example.org)\n"
    )
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "a.md#part-two: no heading #part-two in a.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_in_the_docs_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_doc_and_getting_started_first() -> None:
    readme = links(REPO / "README.md")
    local = [target.partition("#")[0] for target in readme]
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in local, f"README.md does not link docs/{doc.name}"
    docs_links = [target for target in local if target.startswith("docs/")]
    assert docs_links[0] == "docs/getting-started.md"


def test_no_doc_sends_the_reader_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|SPEC section|ORACLES §(?!\d+\]\(\.\./tests/oracles)")
    for page in PAGES:
        assert not outside.search(page.read_text(encoding="utf-8")), page


def test_nothing_reads_a_folder_beside_the_repository() -> None:
    beside = re.compile(r"\.\./" + "shared|parents\\[2\\]|/work/" + "shared")
    roots = ["src", "tests", "benchmarks", "docs", "scenarios", ".ci"]
    for root in roots:
        for path in (REPO / root).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".toml", ""}:
                text = path.read_text(encoding="utf-8", errors="replace")
                assert not beside.search(text), path


# ---- the getting-started walk, run as written --------------------------------------------------

#: Simulated time per run while the walk is tested, to keep the suite fast; the guide's commands
#: are otherwise run exactly as written.
TEST_DURATION = "10s"
SIMULATING = {"run", "check", "sweep", "report", "size", "saturate", "compare"}


def walk_commands() -> list[tuple[list[str], int]]:
    """The capsim commands of the guide's shell blocks, in order, with their expected exit code
    (0, or N from a trailing `# exits N` comment)."""
    text = GETTING_STARTED.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            code, _, comment = line.partition("#")
            words = shlex.split(code)
            if not words or words[0] != "capsim":
                continue
            expected = re.search(r"exits (\d)", comment)
            commands.append((words[1:], int(expected.group(1)) if expected else 0))
    return commands


def test_the_guide_has_a_what_if_a_gate_and_a_report() -> None:
    commands = [" ".join(words) for words, _ in walk_commands()]
    assert any("--load" in c for c in commands) and any("--set" in c for c in commands)
    assert any(c.startswith("check") for c in commands)
    assert any(c.startswith("report") for c in commands)
    assert [code for _, code in walk_commands()].count(1) == 1  # the failing gate


def test_every_command_of_the_getting_started_guide_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios")
    for words, expected in walk_commands():
        if words and words[0] in SIMULATING:
            words = [*words, "--duration", TEST_DURATION]
        done = subprocess.run(
            [sys.executable, "-m", "capsim", *words],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == expected, (words, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert (tmp_path / "baseline.json").exists()


# ---- quoted outputs: what the docs show a command printing is what it prints ----------------
sys.path.insert(0, str(REPO / "tools"))
import docquotes  # noqa: E402  (tools/ is not a package: the script and this test share it)

QUOTES = docquotes.all_quotes()
RUN_QUOTES = [quote for quote in QUOTES if not quote.illustrative]


def _quote_id(quote: docquotes.Quote) -> str:
    return quote.where


@pytest.fixture(scope="module")
def scratch_folder():  # type: ignore[no-untyped-def]
    with docquotes.scratch() as folder:
        yield Path(folder)


def test_the_quote_finder_reads_both_forms_elisions_and_marks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\ncapsim run a.yaml\n```\n\n```\nAll 2 SLOs met.\n...\n```\n\n"
        "<!-- illustrative: b.json is a user's -->\n```console\n$ capsim fit-usl b.json \\\n"
        "    --chart c.svg\nfit: 12 points\n$ capsim validate a.yaml\n```\n",
        encoding="utf-8",
    )
    found = docquotes.quotes(page)
    assert [q.command for q in found] == [
        ["capsim", "run", "a.yaml"],
        ["capsim", "fit-usl", "b.json", "--chart", "c.svg"],
    ]
    assert found[0].output == ["All 2 SLOs met.", "..."] and found[0].elided
    assert found[0].illustrative is None and found[1].illustrative == "b.json is a user's"
    assert found[1].output == ["fit: 12 points"]
    # An elided quote holds when its lines are the output's lines of the same shape, in order.
    real = ["  browse   2,005.9/s   44.31ms", "  search   118.6/s   163.6ms", "All 2 SLOs met."]
    quote = docquotes.Quote(page, 1, ["capsim"], [], ["  search   118.6/s   163.6ms", "..."], 0, 0)
    assert docquotes.differences(quote, real) == []
    quote.output = ["  search   118.6/s   170ms", "..."]
    assert docquotes.differences(quote, real) == ["'search   118.6/s   170ms' is now "
                                                  "'search   118.6/s   163.6ms'"]  # fmt: skip
    assert docquotes.rewritten(quote, real) == ["  search   118.6/s   163.6ms", "..."]


def test_every_quoted_output_is_run_or_marked_illustrative() -> None:
    # The guide's five quotes and the forecast's web-shop one run; the rest read a user's files.
    assert len(RUN_QUOTES) >= 6
    for quote in QUOTES:
        if quote.illustrative is None:
            for word in quote.command[2:]:
                if re.fullmatch(r"[\w./-]+\.(yaml|json|csv|jsonl|binpb)", word):
                    assert (REPO / word).exists() or any(word in words for words in quote.before), (
                        f"{quote.where}: {word} is not in the repository: mark it illustrative"
                    )


def _holds(quote: docquotes.Quote, folder: Path) -> None:
    code, real = docquotes.printed(quote, folder)
    assert code in (0, 1), (quote.where, real[-20:])
    problems = docquotes.differences(quote, real)
    assert not problems, (
        f"{quote.where}: the quote is not what `{' '.join(quote.command)}` prints: "
        f"{problems}; regenerate with `python tools/docquotes.py --write`"
    )


@pytest.mark.parametrize(
    "quote", [q for q in RUN_QUOTES if not q.expensive], ids=_quote_id
)  # fmt: skip
def test_a_quoted_output_is_what_the_command_prints(
    quote: docquotes.Quote, scratch_folder: Path
) -> None:
    """Run as written (its full length, its seed): a guide's run prints the verdict and the
    figures the guide shows under it (the what-if that meets every SLO at twice the load adds a
    read replica: web-shop's replicas, judged on their own group, fail the postgres objective
    whatever the app's instances)."""
    _holds(quote, scratch_folder)


@pytest.mark.slow
@pytest.mark.parametrize("quote", [q for q in RUN_QUOTES if q.expensive], ids=_quote_id)
def test_a_quoted_output_of_a_search_is_what_it_prints(
    quote: docquotes.Quote, scratch_folder: Path
) -> None:
    _holds(quote, scratch_folder)


def test_ci_docs_install_capsim_as_the_readme_does_pinned_to_a_version() -> None:
    pinned = re.compile(r'pip install "capsim @ git\+https://[^"@]+@[^"]+"')
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    assert pinned.search(readme) and pinned.search(ci)
    assert not re.search(r"pip install capsim\b", ci)  # not from a package index
    assert "tag" in ci and "commit" in ci


def test_the_guide_quotes_the_analytic_headroom_capsim_prints() -> None:
    """The footer's bound comes from the queueing formulas (no simulation): the guide's quote of it
    must be the figures `capsim run` prints for the bundled scenario today."""
    text = GETTING_STARTED.read_text(encoding="utf-8")
    model = capsim.build_model(capsim.load_scenario(REPO / "scenarios" / "web-shop.yaml"))
    headroom = analytic_headroom(model, capsim.__version__)
    printed = next_steps(headroom, "scenarios/web-shop.yaml")[1]
    assert printed in text, printed
    factor = f"{headroom.factor:.2f}x" if headroom and headroom.factor else "?"
    assert f"The analytic {factor} was indeed" in text

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


#: The verdict line a run's table ends with (`All 7 SLOs met.`, `5 of 7 SLOs failed.`).
_VERDICT = re.compile(r"^(?:All \d+ SLOs met\.|\d+ of \d+ SLOs failed\.)$", re.M)


def quoted_run_verdicts() -> list[tuple[list[str], str]]:
    """The guide's `capsim run` commands (one to a shell block) whose quoted output, in the
    block right after, ends with a verdict line: (the command's words, that line)."""
    text = GETTING_STARTED.read_text(encoding="utf-8")
    pairs = re.findall(r"^```bash\n([^`]*)^```\n\n```\n([^`]*)^```", text, re.M)
    quoted = []
    for commands, output in pairs:
        words = [shlex.split(line) for line in commands.splitlines() if line.strip()]
        verdict = _VERDICT.search(output)
        if len(words) == 1 and words[0][:2] == ["capsim", "run"] and verdict:
            quoted.append((words[0][1:], verdict.group(0)))
    return quoted


def test_the_guide_quotes_the_verdicts_its_runs_print() -> None:
    """A run of the guide, as written (its full length, its seed), prints the verdict the guide
    shows under it: at twice the load web-shop's read replicas, judged on their own group, fail
    the postgres objective whatever the app's instances, so the what-if that meets every SLO
    must also add a replica."""
    quoted = quoted_run_verdicts()
    assert len(quoted) >= 3  # the scenario as is, at twice the load, and the what-if that fixes it
    for words, verdict in quoted:
        done = subprocess.run(
            [sys.executable, "-m", "capsim", *words],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (words, done.stderr[-2000:])
        assert verdict in done.stdout.splitlines(), (words, verdict, done.stdout[-600:])


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

"""`capsim COMMAND ...` builds only that command (typer turns every command's signature into
click options when called); what the user sees is the same as with the whole app."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app, app_for

WEB_SHOP = str(Path(__file__).resolve().parent.parent / "scenarios" / "web-shop.yaml")


def test_a_named_command_is_built_alone_and_anything_else_gets_the_whole_app():
    assert len(app_for(["run", WEB_SHOP]).registered_commands) == 1
    assert len(app_for(["fit-usl", "--help"]).registered_commands) == 1
    for args in ([], ["--version"], ["rn"], ["--help"], ["RUN"]):
        assert app_for(args) is app


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--help"],
        ["run"],
        ["run", "no-such-file.yaml"],
        ["run", WEB_SHOP, "--bogus"],
        ["run", WEB_SHOP, "--format", "nope"],
        ["run", "--version"],
        ["validate", WEB_SHOP],
        ["fit-usl", "--help"],
        ["schema", "--help"],
    ],
    ids=" ".join,
)
def test_a_command_alone_says_what_the_whole_app_says(args):
    runner = CliRunner()
    alone = runner.invoke(app_for(args), args, prog_name="capsim")
    whole = runner.invoke(app, args, prog_name="capsim")
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)

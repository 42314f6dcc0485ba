"""capsim's typer application, assembled from the command modules.

Each command module (`simulate`, `calibration`, `capacity`, `forecast`, `gate`) declares its
commands on its own `commands` typer and imports only `capsim.cli.common` (what they share) and
the library; this module, the only one importing them, gathers their commands on `app`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.main
import typer.models

import capsim
from capsim.cli import calibration, capacity, forecast, gate, simulate
from capsim.cli.common import ensure_encodable_streams


def _typer_app() -> typer.Typer:
    return typer.Typer(
        name="capsim",
        help="Capacity-planning simulator: from a YAML scenario to latency percentiles, "
        "utilization and SLO verdicts.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


app = _typer_app()

#: The command modules, in the order of `capsim --help`.
COMMAND_MODULES = (simulate, calibration, capacity, forecast, gate)

for _module in COMMAND_MODULES:
    # The commands themselves (not a merged sub-group): `app.registered_commands` lists them all.
    app.registered_commands.extend(_module.commands.registered_commands)


def _compiled_note() -> str:
    """' (compiled event path)' when the event path's hot modules are compiled (mypyc)."""
    from capsim.engine import accelerator

    return " (compiled event path)" if accelerator.compiled() else ""


def _print_version(value: bool) -> None:
    # An eager option's callback runs while the options are parsed, before click asks for a
    # command: so `capsim --version` alone works.
    if value:
        sys.stdout.write(f"capsim {capsim.__version__}{_compiled_note()}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print capsim's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Global options (--version)."""
    from capsim.cli import collector
    from capsim.safeio import forget_inputs

    collector.resume()
    forget_inputs()
    ensure_encodable_streams()


def main() -> None:
    """Console-script entry point."""
    app_for(sys.argv[1:])()


def app_for(args: list[str]) -> typer.Typer:
    """`app`, or when `args` start with a command's name, an app of that command alone with the
    same settings and global options: typer turns the signature of every command it holds into
    click options each time it is called (about 40 ms of CPU for all of capsim's, on every
    start-up), and only the named command runs. Its usage, help, errors and exit codes are the
    same; anything else (no command, an option first, a mistyped name) gets the whole `app`."""
    if not args:
        return app
    for info in app.registered_commands:
        if _command_name(info) == args[0]:
            alone = _typer_app()
            alone.registered_callback = app.registered_callback
            alone.registered_commands = [info]
            return alone
    return app


def _command_name(info: typer.models.CommandInfo) -> str:
    if info.name:
        return info.name
    assert info.callback is not None
    return typer.main.get_command_name(info.callback.__name__)

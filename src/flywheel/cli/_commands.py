"""The command tree: every command registered on the app, and the console-script entry point.

Registration happens here, in one list, rather than by decorators in each module, because the order
of registration is the order ``flywheel --help`` lists the commands, and that order follows the
lifecycle rather than the modules. Typer lists the groups (objective, phase, queue) after the commands.
"""

from __future__ import annotations

import typer

from flywheel.cli._app import app, err
from flywheel.cli._loop import mine, queue_export, queue_import, queue_list, retrain, serve
from flywheel.cli._monitor import monitor
from flywheel.cli._registry import alias, gate, models, promote
from flywheel.cli._run import baselines, diagnose, forecast, objective_log, run, runs
from flywheel.cli._scoping import assess, card, demo, init, phase_back, phase_show, portfolio
from flywheel.cli._workbench import ui

__all__ = [
    "app",
    "main",
]

for command in (
    run,
    baselines,
    diagnose,
    forecast,
    runs,
    init,
    demo,
    gate,
    promote,
    alias,
    models,
    assess,
    portfolio,
    card,
    serve,
    monitor,
    mine,
    retrain,
    ui,
):
    app.command()(command)

objective_app = typer.Typer(
    help="The objective's history: every formula that judged this project.", no_args_is_help=True
)
app.add_typer(objective_app, name="objective")
objective_app.command("log")(objective_log)

phase_app = typer.Typer(
    help="The lifecycle phase: where the project is, and loop-backs.", no_args_is_help=True
)
app.add_typer(phase_app, name="phase")
phase_app.command("show")(phase_show)
phase_app.command("back")(phase_back)

queue_app = typer.Typer(
    help="The review queue: list, export for a labelling tool, import labels.", no_args_is_help=True
)
app.add_typer(queue_app, name="queue")
queue_app.command("list")(queue_list)
queue_app.command("export")(queue_export)
queue_app.command("import")(queue_import)


def main() -> None:
    """Console-script entry point.

    A mistake in the command line itself (an unknown option, a value out of its range) is one
    line on stderr and exit 2, like every other bad input; ``--help`` shows the usage.
    """
    import sys

    from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer's own click

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:  # `flywheel` or `flywheel queue` alone: typer has shown the help
        sys.exit(2)
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        err.print(f"error: {exc.format_message()}{hint}", markup=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)

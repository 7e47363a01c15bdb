"""The flywheel's commands: serve the champion, mine the log, work the review queue, retrain.

The service and the loop are imported inside each command, so the CLI starts without them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flywheel.cli._app import ExecutorOpt, JsonOpt, PathArg, err, out, user_errors
from flywheel.errors import FlywheelError

__all__ = [
    "mine",
    "queue_export",
    "queue_import",
    "queue_list",
    "retrain",
    "serve",
]


ShadowOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Also run NAME on every /predict request and log its answers (table 'shadow', same "
        "prediction ids), never returning them. NAME is an alias (e.g. challenger) or a saved "
        "model (its newest version), fixed for the service's life: promotions move only the "
        "served model.",
    ),
]
PilotOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME:SHARE",
        help="Answer SHARE of the requests (0 < SHARE <= 1, e.g. challenger:0.1) with NAME and the "
        "rest with the served model; on each request the other model runs as its shadow, so "
        "every request has both answers logged. A request is NAME's when the SHA-256 of its first "
        "prediction id, read as a fraction, is below SHARE. NAME is fixed as for --shadow.",
    ),
]

ServeWorkersOpt = Annotated[
    int,
    typer.Option(
        min=1,
        max=64,
        help="Processes answering on the one port (one per core to use); they log through one "
        "shared writer, so no prediction is lost or logged twice. /metrics counts per worker.",
    ),
]
ModelProcessOpt = Annotated[
    bool,
    typer.Option(
        "--model-process/--model-on-loop",
        help="Run the model in a worker process (default: inference on another core, the event loop "
        "never waits behind it) or on the event loop itself (one process less, one model copy less).",
    ),
]


def serve(
    path: PathArg = Path("."),
    model: Annotated[
        str, typer.Option("--model", help="The alias to serve (it is followed on promotion).")
    ] = "champion",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0 picks a free one; the line printed says which).")
    ] = 8000,
    ack: Annotated[
        str,
        typer.Option(
            help="durable: answer once the prediction is committed to the log (default); "
            "fast: answer once it is handed to the log's writer process (a power cut may lose "
            "the last milliseconds; killing the service loses nothing)."
        ),
    ] = "durable",
    max_batch: Annotated[
        int, typer.Option(min=1, help="Most rows in one /predict request (413 above).")
    ] = 1000,
    max_body_mb: Annotated[
        float,
        typer.Option(
            min=0.001, help="Largest request body in MB (2^20 bytes); 413 above, before it is read."
        ),
    ] = 8.0,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="Require 'Authorization: Bearer <token>' on /feedback, /outcome, /review; the token is "
            "read from this file, or generated into it (mode 0600) when missing. /predict stays open."
        ),
    ] = None,
    queue_size: Annotated[
        int, typer.Option(min=1, help="Records waiting for the log's writer before answering 503.")
    ] = 10000,
    retention_rows: Annotated[
        int | None, typer.Option(min=1, help="Keep at most this many predictions.")
    ] = None,
    retention_days: Annotated[
        float | None, typer.Option(min=0, help="Delete predictions older than this.")
    ] = None,
    allow_new_classes: Annotated[
        bool, typer.Option(help="Accept feedback labels outside the known classes.")
    ] = False,
    model_process: ModelProcessOpt = True,
    shadow: ShadowOpt = None,
    pilot: PilotOpt = None,
    workers: ServeWorkersOpt = 1,
) -> None:
    """Serve the champion: POST /predict (logged), POST /feedback, POST /outcome, GET /review/next,
    POST /review/ID, GET /health, GET /metrics, /docs."""
    from flywheel.project import load_project
    from flywheel.serving import ServeOptions, parse_pilot
    from flywheel.serving import serve as run_service

    with user_errors():
        if ack not in ("durable", "fast"):
            raise FlywheelError(f"--ack must be durable or fast; got {ack!r}")
        options = ServeOptions(
            alias=model,
            ack=ack,  # type: ignore[arg-type]
            max_batch=max_batch,
            max_body_bytes=int(max_body_mb * (1 << 20)),
            queue_size=queue_size,
            retention_rows=retention_rows,
            retention_days=retention_days,
            allow_new_classes=allow_new_classes,
            model_process=model_process,
            token_file=token_file,
            shadow=shadow,
            pilot=None if pilot is None else parse_pilot(pilot),
            workers=workers,
        )
        run_service(load_project(path), host=host, port=port, options=options)


def _print_items(items: list[Any], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("item", "score", "model says", "reasons", "nominated by"):
        table.add_column(col)
    for it in items:
        table.add_row(
            it.id, f"{it.score:.2f}", str(it.prediction), "; ".join(it.reasons), f"{it.model} v{it.version}"
        )
    out.print(table)


def mine(
    path: PathArg = Path("."),
    budget: Annotated[int, typer.Option(min=1, help="How many rows to nominate for review.")] = 50,
    pool: Annotated[Path | None, typer.Option(help="A file of unlabelled rows to mine as well.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Nominate the logged predictions (and pool rows) a label would teach most; add them to the queue."""
    from flywheel.loop import mine as mine_items
    from flywheel.project import load_project

    with user_errors():
        items = mine_items(load_project(path), budget, pool=pool)
        if as_json:
            sys.stdout.write(json.dumps([i.to_dict() for i in items], indent=2, default=str) + "\n")
            return
        if not items:
            out.print("nothing to mine: no unlabelled logged predictions with a reason to review")
            return
        _print_items(items, f"{len(items)} rows added to the review queue")
        where = str(path)
        out.print("next: label them, then retrain on what they taught:", markup=False)
        for line in (
            f"flywheel queue export queue.csv {where}   # fill the label column in any tool, then:",
            f"flywheel queue import queue.csv {where}   # (or label on the service: POST /review/ID)",
            f"flywheel retrain {where}",
        ):
            out.print(f"  {line}", soft_wrap=True, markup=False)


def queue_list(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Open review items, highest priority first."""
    from flywheel.loop import list_queue
    from flywheel.project import load_project

    with user_errors():
        items = list_queue(load_project(path))
        if as_json:
            sys.stdout.write(json.dumps([i.to_dict() for i in items], indent=2, default=str) + "\n")
            return
        if not items:
            out.print("the review queue is empty; `flywheel mine` fills it")
            return
        _print_items(items, f"{len(items)} open review items")


def queue_export(
    output: Annotated[Path, typer.Argument(help="A .csv or .jsonl file to write.")],
    path: PathArg = Path("."),
) -> None:
    """Write the open items (features, the model's guess, the reasons, an empty label column)."""
    from flywheel.loop import export_queue
    from flywheel.project import load_project

    with user_errors():
        n = export_queue(load_project(path), output)
        out.print(f"{n} items written to {output}", markup=False)


def queue_import(
    labels: Annotated[Path, typer.Argument(help="A .csv or .jsonl file with item_id and label (and by).")],
    path: PathArg = Path("."),
) -> None:
    """Take labels for review items; each becomes feedback for retraining."""
    from flywheel.loop import import_labels
    from flywheel.project import load_project
    from flywheel.registry import load_alias

    with user_errors():
        project = load_project(path)
        classes = load_alias(project).schema.classes
        taken, problems = import_labels(project, labels, classes)
        for p in problems:
            err.print(f"skipped: {p}", markup=False)
        out.print(f"{taken} labels taken", markup=False)
        if problems and not taken:
            raise typer.Exit(2)


def retrain(path: PathArg = Path("."), as_json: JsonOpt = False, executor: ExecutorOpt = None) -> None:
    """Fit the champion's model on train + accepted labels, register it as challenger, judge it.

    Exit code: 0 when it beats the champion (promote it with `flywheel promote NAME`), 1 when it
    loses, 3 when the comparison is not decided.
    """
    from flywheel.execution import make_executor
    from flywheel.loop import retrain as retrain_model
    from flywheel.project import load_project

    with user_errors():
        project = load_project(path)
        with make_executor(executor, 1) as where:  # one fit: one worker, with all the cores
            result = retrain_model(project, executor=where)
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            out.print(
                f"challenger: {result.name} v{result.version}, trained on {result.trained_rows:,} rows "
                f"({result.added_labels:,} from feedback)",
                markup=False,
            )
            for note in result.notes:
                out.print(f"note: {note}", markup=False)
            colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[result.verdict["status"]]
            out.print(
                f"[{colour}]{result.verdict['status'].upper()}[/] {escape(result.verdict['reason'])}",
                soft_wrap=True,
            )
            if result.verdict["status"] == "pass":
                out.print(f"next: flywheel promote {result.name} {path}", soft_wrap=True, markup=False)
            else:
                out.print(
                    f"next: more labels settle it — flywheel mine {path}, label, flywheel retrain {path}",
                    soft_wrap=True,
                    markup=False,
                )
        raise typer.Exit({"pass": 0, "fail": 1, "inconclusive": 3}[result.verdict["status"]])

"""The prediction log: one writer process group-commits predictions, the answers of shadow models,
feedback and outcomes to SQLite (or to the project's PostgreSQL database); the service sends it
records through a pipe, and mining, retraining, monitoring and reports read the log.

It sits below serving and the loop (both use it) and imports nothing of flywheel: the writer runs
as a script of its own, started in a fraction of a second when the service needs a new one.
"""

from flywheel.prediction_log._location import (
    LogLocation,
    LogUnreachable,
    PgConnection,
    PostgresLog,
    is_postgres,
    log_exists,
    writer_target,
)
from flywheel.prediction_log._log import PredictionLog
from flywheel.prediction_log._pipes import PipeOut
from flywheel.prediction_log._read import (
    in_conflict,
    read_feedback,
    read_labels,
    read_outcomes,
    read_predictions,
    read_shadow,
)
from flywheel.prediction_log._records import (
    LOG_NAME,
    LogFull,
    LogWriteError,
    PredictionRecord,
    ShadowRecord,
    new_ids,
)
from flywheel.prediction_log._shared import serve_shared, shared_writer_script
from flywheel.prediction_log._writer import (
    ACK,
    FRAME,
    SCHEMA,
    connect,
    main,
    pack_frame,
    short_slice,
    take_frames,
    write_all,
    writer_script,
)

__all__ = [
    "ACK",
    "FRAME",
    "LOG_NAME",
    "LogFull",
    "LogLocation",
    "LogUnreachable",
    "LogWriteError",
    "PgConnection",
    "PipeOut",
    "PostgresLog",
    "PredictionLog",
    "PredictionRecord",
    "SCHEMA",
    "ShadowRecord",
    "connect",
    "in_conflict",
    "is_postgres",
    "log_exists",
    "main",
    "new_ids",
    "pack_frame",
    "read_feedback",
    "read_labels",
    "read_outcomes",
    "read_predictions",
    "read_shadow",
    "serve_shared",
    "shared_writer_script",
    "short_slice",
    "take_frames",
    "write_all",
    "writer_script",
    "writer_target",
]

"""Phase 4, deployment: the FastAPI prediction service, the model's worker process, the fast path for
numeric pipelines, shadow and pilot runs of a second model, and the service's side of the
prediction log.
"""

from flywheel.serving._app import create_app, listen
from flywheel.serving._auth import load_token
from flywheel.serving._fast_path import FastPath, fast_path
from flywheel.serving._metrics import LATENCY_BUCKETS
from flywheel.serving._model_process import ModelFailed, ModelProcess, ModelProcessGone, main, settle
from flywheel.serving._options import ServeOptions
from flywheel.serving._serve import serve
from flywheel.serving._served import Served, load_served
from flywheel.serving._shadow import parse_pilot, piloted

__all__ = [
    "FastPath",
    "LATENCY_BUCKETS",
    "ModelFailed",
    "ModelProcess",
    "ModelProcessGone",
    "ServeOptions",
    "Served",
    "create_app",
    "fast_path",
    "listen",
    "load_served",
    "load_token",
    "main",
    "parse_pilot",
    "piloted",
    "serve",
    "settle",
]

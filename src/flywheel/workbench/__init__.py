"""The workbench: a local web app over the store (``flywheel ui``) — portfolio, project, runs,
monitoring and the review queue — for people who decide by looking.

It reads what the commands stored and re-runs nothing; its one write is a review label, which
becomes feedback exactly as the service's ``POST /review/{id}`` makes it.
"""

from flywheel.workbench._app import create_app
from flywheel.workbench._serve import serve

__all__ = [
    "create_app",
    "serve",
]

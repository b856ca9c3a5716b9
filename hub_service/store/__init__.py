"""Persistence of jobs: models, queries and alembic migrations."""

from .models import TERMINAL, Job, job_model  # noqa: F401
from .queries import BadCursor, DuplicateKey, InvalidTransition, Store  # noqa: F401

"""Persistence of jobs: models, queries and alembic migrations."""

from .models import TERMINAL, Job, job_model
from .queries import BadCursor, DuplicateKey, InvalidTransition, Store

__all__ = ["TERMINAL", "Job", "job_model", "BadCursor", "DuplicateKey", "InvalidTransition", "Store"]

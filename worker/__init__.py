"""Celery adapter: `celery -A worker worker -Q classify` and `-Q haiku,sonnet,opus`."""

from worker.batch_tasks import poll as batch_api_poll
from worker.celery_app import QUEUES, app
from worker.tasks import classify, complete, complete_many

__all__ = ["QUEUES", "app", "batch_api_poll", "classify", "complete", "complete_many"]

"""The Message Batches of a tierroute batch, for GET /v1/batches/{id}, and cancelling them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tierroute.store.models import ProviderBatch


def provider_batches_view(session: Session, batch_id: uuid.UUID) -> list[dict[str, Any]]:
    """Anthropic's state of each Message Batch: processing_status and request_counts."""
    rows = session.scalars(
        select(ProviderBatch)
        # Shadow judging's Message Batches hold no job of the batch: not shown.
        .where(ProviderBatch.batch_id == batch_id, ProviderBatch.purpose == "complete")
        .order_by(ProviderBatch.tier, ProviderBatch.id)
    )
    return [
        {
            "id": row.anthropic_batch_id,
            "tier": row.tier,
            "processing_status": row.processing_status,
            "request_counts": {
                "processing": row.processing,
                "succeeded": row.succeeded,
                "errored": row.errored,
                "canceled": row.canceled,
                "expired": row.expired,
            },
            "requests": row.request_count,
            "results_processed": row.results_processed_at is not None,
            "cancel_requested": row.cancel_requested_at is not None,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "ended_at": row.ended_at.isoformat() if row.ended_at else None,
            "last_polled_at": row.last_polled_at.isoformat() if row.last_polled_at else None,
        }
        for row in rows
    ]


def request_cancel(session: Session, batch_id: uuid.UUID) -> int:
    """Ask the poller to cancel the batch's unfinished Message Batches; returns how many."""
    cancelled = session.execute(
        update(ProviderBatch)
        .where(
            ProviderBatch.batch_id == batch_id,
            ProviderBatch.results_processed_at.is_(None),
            ProviderBatch.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=func.now())
        .returning(ProviderBatch.id)
    ).all()
    return len(cancelled)

"""The cost dashboard: figures from Postgres (data), SVG charts (svg), the HTML page (render)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from tierroute.dashboard.data import DashboardData, load_dashboard
from tierroute.dashboard.render import CONTENT_SECURITY_POLICY, render_dashboard
from tierroute.domain.tiers import TierTable

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DashboardData",
    "dashboard_html",
    "load_dashboard",
    "render_dashboard",
]


def dashboard_html(
    session: Session, tiers: TierTable, api_key_id: uuid.UUID | None = None, days: int = 30
) -> str:
    """The dashboard page over all keys' data, or one key's."""
    return render_dashboard(load_dashboard(session, tiers, api_key_id, days=days), tiers)

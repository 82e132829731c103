"""Alembic migrations for tierroute (run with `tierroute migrate`)."""

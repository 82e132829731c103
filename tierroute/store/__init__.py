"""Postgres: engine, models, job writes, typed reads. New store code lands here first."""

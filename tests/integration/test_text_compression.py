"""Migration 0012: the text columns compress with lz4 where the server has it."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Services

pytestmark = pytest.mark.integration


def test_text_columns_use_lz4(services: Services) -> None:
    url = services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        if not (row and row[0]):
            pytest.skip("this Postgres was built without lz4")
        methods = dict(
            conn.execute(
                "SELECT attname, attcompression FROM pg_attribute"
                " WHERE attrelid = 'jobs'::regclass AND attname IN ('prompt', 'result_text')"
            ).fetchall()
        )
    assert methods == {"prompt": "l", "result_text": "l"}

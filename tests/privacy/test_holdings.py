"""Every table is accounted for: it holds customer data (an entry in HOLDINGS, so export
and erasure cover it) or it is listed as holding none. A table added by another feature
fails here until it is one or the other."""

from __future__ import annotations

import psycopg

from bot.privacy import HOLDINGS, NOT_PERSONAL


def test_every_table_is_a_holding_or_holds_no_customer_data(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    listed = [h.table for h in HOLDINGS]
    assert len(listed) == len(set(listed))
    assert not set(listed) & NOT_PERSONAL
    unaccounted = tables - set(listed) - NOT_PERSONAL
    assert not unaccounted, (
        f"tables {sorted(unaccounted)} are neither in HOLDINGS nor in NOT_PERSONAL "
        "(bot/privacy/holdings.py): does an erasure have to delete or anonymise them?")
    assert set(listed) <= tables
    # contacts last, conversations just before: the rest find their rows through them
    assert listed[-2:] == ["conversations", "contacts"]

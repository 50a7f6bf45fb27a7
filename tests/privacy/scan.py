"""Searching everything for a customer, generically: every text-like column of every table
of every schema, every Redis key and value, every object of the bucket."""

from __future__ import annotations

from typing import Any

import boto3
import psycopg

from bot.infra.redis_adapter import RedisClient
from bot.settings.media import MediaSettings

TEXT_TYPES = ("text", "character varying", "character", "jsonb", "json", "ARRAY", "tsvector")


def database_hits(database_url: str, needles: list[str]) -> list[str]:
    """``schema.table.column (n rows)`` for every column holding one of ``needles``."""
    patterns = [f"%{n}%" for n in needles]
    hits = []
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "JOIN information_schema.tables USING (table_schema, table_name) "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
            "('pg_catalog', 'information_schema') AND data_type = ANY(%s) ORDER BY 1, 2, 3",
            (list(TEXT_TYPES),),
        ).fetchall()
        assert len(columns) > 50, "the scan must see the whole schema"
        for schema, table, column in columns:
            row = conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}.{} WHERE {}::text ILIKE ANY(%s)").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table),
                    psycopg.sql.Identifier(column)),
                (patterns,),
            ).fetchone()
            if row and row[0]:
                hits.append(f"{schema}.{table}.{column} ({row[0]} rows)")
    return hits


async def redis_hits(client: RedisClient, needles: list[str]) -> list[str]:
    """Keys whose name or value holds one of ``needles``."""
    hits = []
    lowered = [n.lower() for n in needles]
    async for key in client.scan_iter(count=1000):
        kind = await client.type(key)
        value: Any
        if kind == "string":
            value = await client.get(key)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "set":
            value = await client.smembers(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1)
        elif kind == "stream":
            value = await client.xrange(key)
        else:
            value = ""
        blob = f"{key} {value}".lower()
        if any(n in blob for n in lowered):
            hits.append(str(key))
    return hits


def s3_objects(media: MediaSettings) -> dict[str, bytes]:
    client = boto3.client(
        "s3", endpoint_url=media.s3_endpoint_url, region_name=media.s3_region,
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=media.s3_bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=media.s3_bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = body
    return found


def object_hits(objects: dict[str, bytes], needles: list[str]) -> list[str]:
    encoded = [n.encode() for n in needles]
    return [k for k, body in objects.items()
            if any(e in body or e in k.encode() for e in encoded)]

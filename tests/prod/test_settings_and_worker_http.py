"""The production check refuses .env.example's placeholders; the worker's own /healthz
and /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from bot.api.worker_http import WorkerHttp
from bot.settings import Settings
from bot.wiring.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def production_from(values: dict[str, str]) -> Settings:
    """What compose builds from .env (docker-compose.yml's URLs around its passwords)."""
    return Settings(
        env="production", secret_key=values["ATIENDE_SECRET_KEY"],
        database_url=f"postgresql://atiende:{values['POSTGRES_PASSWORD']}@postgres:5432/atiende",
        redis_url=f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0",
        media={"backend": "s3", "s3_secret_access_key": values["MINIO_ROOT_PASSWORD"]},
    )


def test_env_example_fails_the_production_check_until_its_secrets_are_replaced() -> None:
    values = env_example()
    with pytest.raises(ValidationError, match="ATIENDE_SECRET_KEY"):
        production_from(values)
    values["ATIENDE_SECRET_KEY"] = "9f" * 32
    with pytest.raises(ValidationError, match="ATIENDE_DATABASE_URL"):
        production_from(values)
    values["POSTGRES_PASSWORD"] = "Xq7-real-db-password"
    with pytest.raises(ValidationError, match="ATIENDE_REDIS_URL"):
        production_from(values)
    values["REDIS_PASSWORD"] = "Rr8-real-redis-password"
    with pytest.raises(ValidationError, match="S3_SECRET_ACCESS_KEY"):
        production_from(values)
    values["MINIO_ROOT_PASSWORD"] = "Mm9-real-minio-password"
    assert production_from(values).simulator_enabled is False


async def test_worker_serves_its_health_and_metrics(runtime: Runtime) -> None:
    http = WorkerHttp(runtime, host="127.0.0.1", port=0)
    await http.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http.port}") as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["components"] == {"database": "ok", "redis": "ok",
                                                   "worker": "ok"}
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "atiende_queue_depth" in metrics.text
            assert "atiende_processing_seconds" in metrics.text
            assert (await client.get("/docs")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
            # one of the worker's loops dies (as an unexpected error would end it)
            inbound = next(t for t in runtime._tasks if t.get_name() == "atiende-inbound")
            inbound.cancel()
            await asyncio.sleep(0.1)
            down = await client.get("/healthz")
            assert down.status_code == 503 and down.json()["down"] == ["worker"]
            assert "atiende-inbound" in down.json()["components"]["worker"]
    finally:
        await http.close()

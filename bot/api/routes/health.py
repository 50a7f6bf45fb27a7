"""Liveness of the parts the bot needs, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.api.deps import RuntimeDep
from bot.infra.redis_adapter import CacheUnavailable, ping
from bot.wiring.runtime import Runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Per-component health (200 when database and Redis answer)")
async def healthz(runtime: RuntimeDep) -> JSONResponse:
    body, healthy = health_body(await component_health(runtime))
    return JSONResponse(body, status_code=200 if healthy else 503)


async def component_health(runtime: Runtime) -> dict[str, str]:
    """The database and Redis, each ``ok`` or ``down: …`` (also the worker's /healthz)."""
    components: dict[str, str] = {}
    try:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        components["database"] = "ok"
    except (SQLAlchemyError, OSError) as exc:
        components["database"] = f"down: {type(exc).__name__}"
    try:
        await ping(runtime.redis)
        components["redis"] = "ok"
    except CacheUnavailable as exc:
        components["redis"] = f"down: {exc}"
    return components


def health_body(components: dict[str, str]) -> tuple[dict[str, object], bool]:
    """The /healthz JSON (``status``, ``components``, ``down``) and whether all is ok."""
    healthy = all(v == "ok" for v in components.values())
    down = [name for name, v in components.items() if v != "ok"]
    return {"status": "ok" if healthy else "down", "components": components, "down": down}, healthy


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(await render_metrics(runtime), media_type=CONTENT_TYPE_LATEST)


async def render_metrics(runtime: Runtime) -> bytes:
    """This process's registry, with the queue gauges read fresh from the database."""
    try:
        await runtime.reconciler.refresh_gauges()
    except (SQLAlchemyError, OSError):
        pass  # the counters are still worth serving
    return runtime.metrics.render()

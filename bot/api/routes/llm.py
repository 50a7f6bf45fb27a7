"""Admin API and page for the LLM chain: see it, edit it (keys masked), test it, its calls."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from bot.api.auth import AdminDep, Principal, Role, audit, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.errors import LLMConfigError
from bot.llm.secrets import mask

router = APIRouter(prefix="/api/v1/llm", tags=["llm"])
pages = APIRouter(include_in_schema=False)


class DeploymentPublic(BaseModel):
    model_name: str
    provider: str
    model: str
    api_base: str | None
    api_key: str | None = Field(description="masked: env references in full, keys as ••••abcd")
    timeout: float | None


class ChainPublic(BaseModel):
    configured: bool
    source: str = Field(description="database (edited here), file (ATIENDE_LLM_CONFIG) or none")
    error: str | None
    budget_seconds: float
    warm_seconds: float | None
    purposes: dict[str, list[str]] = Field(description="model names tried in order per use")
    models: list[DeploymentPublic]
    yaml: str = Field(description="the chain in litellm Router format, keys masked")


class ChainUpdate(BaseModel):
    yaml: str = Field(min_length=1, max_length=65_536, description="masked keys mean: keep")


class ModelTestPublic(BaseModel):
    model_name: str
    ok: bool
    latency_ms: float
    answered_by: str | None
    text: str | None
    error: str | None


class LLMCallPublic(BaseModel):
    id: int
    created_at: datetime
    purpose: str
    model_group: str
    answered_by: str | None
    provider: str | None
    model: str | None
    outcome: str
    rejected: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    error: str | None
    attempts: list[dict[str, Any]] | None


class CallsPublic(BaseModel):
    calls: list[LLMCallPublic]
    last_24h: list[dict[str, Any]]


def _chain_public(runtime: Any) -> ChainPublic:
    llm = runtime.llm
    described = llm.describe()
    config = llm.chain.config
    models = []
    for d in config.model_list if config else []:
        params = d.litellm_params
        key = params.get("api_key")
        timeout = params.get("timeout")
        models.append(DeploymentPublic(
            model_name=d.model_name, provider=d.provider, model=str(params["model"]),
            api_base=params.get("api_base"), api_key=mask(key) if isinstance(key, str) else None,
            timeout=float(timeout) if isinstance(timeout, int | float) else None,
        ))
    return ChainPublic(**described, models=models, yaml=llm.masked_yaml())


@router.get("/chain", response_model=ChainPublic)
async def get_chain(runtime: RuntimeDep, admin: AdminDep) -> ChainPublic:
    """The chain in use, with secrets masked."""
    return _chain_public(runtime)


@router.put("/chain", response_model=ChainPublic)
async def put_chain(body: ChainUpdate, runtime: RuntimeDep, admin: AdminDep) -> ChainPublic:
    """Replace the chain (litellm Router YAML); keys are stored encrypted; used at once."""
    try:
        config = await runtime.llm.save_yaml(body.yaml, by=admin.email)
    except LLMConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    # the document itself holds keys: record the models, never the YAML
    await audit(runtime, admin, "llm.chain.update", f"llm_config:{runtime.llm.chain.config_id}",
                models=config.model_names)
    return _chain_public(runtime)


@router.post("/chain/test", response_model=list[ModelTestPublic])
async def test_chain(runtime: RuntimeDep, admin: AdminDep) -> list[ModelTestPublic]:
    """One short request per model name (with its fallbacks); recorded like any call."""
    results = await runtime.llm.test()
    await audit(runtime, admin, "llm.chain.test", f"llm_config:{runtime.llm.chain.config_id}")
    return [ModelTestPublic(**asdict(r)) for r in results]


@router.get("/calls", response_model=CallsPublic)
async def list_calls(
    runtime: RuntimeDep, admin: AdminDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> CallsPublic:
    """The latest calls, and per model/outcome figures for the last 24 hours."""
    await runtime.llm.calls.flush()
    rows = await runtime.llm.calls.recent(limit)
    summary = await runtime.llm.calls.summary(datetime.now(UTC) - timedelta(hours=24))
    return CallsPublic(
        calls=[LLMCallPublic.model_validate(row, from_attributes=True) for row in rows],
        last_24h=summary,
    )


AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]


@pages.get("/admin/llm", response_class=HTMLResponse)
async def llm_page(request: Request, admin: AdminPage) -> HTMLResponse:
    return render(request, "llm_admin.html", user=admin, areas=("llm_admin",), title="nav.llm",
                  script="llm")

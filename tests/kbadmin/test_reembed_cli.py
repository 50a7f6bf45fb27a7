"""``atiende kb reembed`` after switching to a provider's model (env settings, real HTTP),
with the provider down (exit 1, reason, nothing replaced) and back (everything swapped)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from bot.llm.scripted import Behaviour, ScriptedServer


def test_reembed_command_on_a_provider_model(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, provider: ScriptedServer
) -> None:
    monkeypatch.setenv("ATIENDE_DATABASE_URL", database_url)
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDER", "hashing")
    monkeypatch.setenv("ATIENDE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("ATIENDE_DATA_DIR", str(tmp_path))
    (tmp_path / "pagos.md").write_text(
        "---\nid: pagos\ntitle: Pagos\nkind: policy\n---\nAceptamos OXXO y SPEI.\n", "utf-8"
    )
    runner = CliRunner()
    assert runner.invoke(app, ["kb", "import", str(tmp_path / "pagos.md")]).exit_code == 0

    monkeypatch.delenv("ATIENDE_KNOWLEDGE__EMBEDDER")
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDING_MODEL", "openai/bow-embed")
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDING_API_BASE", provider.url)
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDING_API_KEY", "sk-test")
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDING_RETRIES", "0")
    provider.default = Behaviour.error(500)
    down = runner.invoke(app, ["kb", "reembed"])
    assert down.exit_code == 1
    assert "bow-embed" in down.output and "nothing replaced" in down.output

    provider.default = Behaviour.answer("ok")
    back = runner.invoke(app, ["kb", "reembed"])
    assert back.exit_code == 0, back.output
    assert "re-embedded 1 chunks" in back.output
    again = runner.invoke(app, ["kb", "reembed"])
    assert "re-embedded 0 chunks" in again.output

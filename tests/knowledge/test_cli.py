"""``atiende kb import`` against a database, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app


def test_kb_import_command(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATIENDE_DATABASE_URL", database_url)
    monkeypatch.setenv("ATIENDE_KNOWLEDGE__EMBEDDER", "hashing")
    monkeypatch.setenv("ATIENDE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("ATIENDE_DATA_DIR", str(tmp_path))
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "pagos.md").write_text(
        "---\nid: pagos\ntitle: Pagos\nkind: policy\n---\nAceptamos OXXO.\n", "utf-8"
    )
    (folder / "catalogo.csv").write_text(
        "sku,name,description,price,currency,stock,category\nA1,Kit,x,10.50,MXN,2,y\n", "utf-8"
    )
    runner = CliRunner()
    ok = runner.invoke(app, ["kb", "import", str(folder)])
    assert ok.exit_code == 0, ok.output
    assert "2 files imported, 0 failed: 1 articles and 1 products saved" in ok.output

    (folder / "roto.csv").write_text("sku,name\nB,C\n", "utf-8")
    failed = runner.invoke(app, ["kb", "import", str(folder), "--replace"])
    assert failed.exit_code == 1
    assert "roto.csv:1" in failed.output and "wrong columns" in failed.output
    assert "2 unchanged" in failed.output and "--replace skipped" in failed.output

    missing = runner.invoke(app, ["kb", "import", str(tmp_path / "nada")])
    assert missing.exit_code == 1 and "no such file" in missing.output

"""One i18n mechanism, complete in Spanish and English, and pages a strict
Content-Security-Policy can serve: checked over the templates, the static modules and the
page catalogs (no browser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.api.pages import LANGUAGES, NAV, PageTexts

BOT = Path(__file__).resolve().parents[2] / "bot"
TEMPLATES = sorted((BOT / "templates").glob("*.html"))
SCRIPTS = sorted((BOT / "static" / "js").rglob("*.js"))
KEY = re.compile(r"""\bt\(\s*["']([a-z_]+)\.([a-z0-9_]+)["']""")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def test_every_catalog_is_complete_in_both_languages() -> None:
    texts = PageTexts()
    assert {"common", "nav", "inbox", "admin", "dashboard", "kb", "analytics", "audit",
            "campaigns", "campaign", "llm_admin", "simulator", "whatsapp",
            "errors"} <= set(texts.areas)
    for area, catalog in texts.areas.items():
        es, en = catalog["es"], catalog["en"]
        assert set(es) == set(en), (area, set(es) ^ set(en))
        for key in es:
            assert es[key].strip() and en[key].strip(), (area, key)
            if area != "errors":  # error patterns map English text to each language
                assert set(PLACEHOLDER.findall(es[key])) == set(PLACEHOLDER.findall(en[key])), (
                    area, key)


def test_every_text_a_page_asks_for_exists() -> None:
    texts = PageTexts()
    missing = []
    for path in [*TEMPLATES, *SCRIPTS]:
        for area, key in KEY.findall(path.read_text(encoding="utf-8")):
            if key.endswith("_"):  # a family ("inbox.owner_" + owner): some member exists
                found = any(k.startswith(key) for k in texts.areas.get(area, {}).get("es", {}))
            else:
                found = all(key in texts.areas.get(area, {}).get(lang, {}) for lang in LANGUAGES)
            if not found:
                missing.append(f"{path.name}: {area}.{key}")
    for item in NAV:
        assert item.key in texts.areas["nav"]["es"]
    assert missing == []


def test_templates_have_no_inline_code_and_one_layout() -> None:
    for path in TEMPLATES:
        html = path.read_text(encoding="utf-8")
        for script in re.findall(r"<script\b[^>]*>", html):
            assert 'src="' in script or 'type="application/json"' in script, (path.name, script)
        assert not re.search(r"\sstyle=", html), path.name
        assert not re.search(r"\son[a-z]+=", html), path.name
        assert "data-es=" not in html and "localStorage" not in html, path.name
        if path.name != "layout.html":
            assert html.startswith('{% extends "layout.html" %}'), path.name


def test_every_module_a_page_loads_is_served() -> None:
    static = BOT / "static"
    routes = "\n".join(p.read_text() for p in (BOT / "api" / "routes").glob("*.py"))
    for script in re.findall(r'script="([a-z_]+)"', routes):
        assert (static / "js" / "pages" / f"{script}.js").exists(), script
    for path in SCRIPTS:
        for target in re.findall(r'from "(/static/js/[^"]+)"', path.read_text()):
            assert (static / target.removeprefix("/static/")).exists(), (path.name, target)
        assert "innerHTML" not in path.read_text(), path.name  # text stays text
        assert "fetch(" not in path.read_text() or path.name == "core.js", path.name


def test_api_errors_read_in_spanish() -> None:
    from bot.api.localize import ErrorTranslator

    translate = ErrorTranslator(PageTexts())
    assert translate.text("already claimed by Ana", "es") == "ya la tomó Ana"
    assert translate.text("already claimed by Ana", "en") == "already claimed by Ana"
    assert translate.text("something new", "es") == "something new"  # unknown: kept
    detail = [{"loc": ["body", "text"], "msg": "String should have at least 1 character"}]
    assert translate.detail(detail, "es")[0]["msg"] == "debe tener al menos 1 caracteres"
    assert json.dumps(translate.detail("Not Found", "es")) == '"No encontrado"'

"""Import: upserts, versions, --replace, and every kind of bad input (nothing half-imported)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.chunking import chunk_markdown
from knowledge.embeddings import HashingEmbedder
from knowledge.models import Chunk, Product
from knowledge.store import KnowledgeStore

ARTICLE = b"""---
id: formas-pago
title: Formas de pago
kind: policy
tags: [pago]
---
# Formas de pago

Puedes pagar con tarjeta, SPEI u OXXO.

## Periodo de gracia

Tienes 30 dias naturales para pagar.
"""
CSV = (
    b"sku,name,description,price,currency,stock,category\n"
    b"AUTO-AMP,Seguro de Auto Amplia,Cobertura amplia,11800.00,MXN,,Auto\n"
    b"KIT-VIAL,Kit vial,Triangulos y extintor,899.00,MXN,25,Accesorios\n"
)


async def _chunks(sessions: async_sessionmaker[AsyncSession], source: str) -> int:
    async with sessions() as s:
        return int(await s.scalar(
            select(func.count()).select_from(Chunk).where(Chunk.source_id == source)) or 0)


async def test_import_upserts_versions_and_revision(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = await store.revision()
    report = await store.import_files([("a.md", ARTICLE), ("c.csv", CSV)], editor="ana")
    assert not report.failed, report
    assert (sum(f.articles for f in report.files), sum(f.products for f in report.files)) == (1, 2)
    assert await store.revision() > before
    assert await _chunks(sessions, "formas-pago") == 2  # one chunk per heading section
    # the same files again: nothing changes, no new version
    again = await store.import_files([("a.md", ARTICLE), ("c.csv", CSV)], editor="ana")
    assert sum(f.unchanged for f in again.files) == 3
    edited = ARTICLE.replace(b"30 dias", b"15 dias")
    await store.import_files([("a.md", edited)], editor="luis")
    versions = await store.versions("article", "formas-pago")
    assert [(v.version, v.action, v.edited_by) for v in versions] == [
        (2, "update", "luis"), (1, "create", "ana")]
    await store.restore("article", "formas-pago", 1, editor="ana")
    assert "30 dias" in (await store.get_article("formas-pago")).body
    assert (await store.versions("article", "formas-pago"))[0].action == "restore"


async def test_replace_soft_deletes_what_is_gone(store: KnowledgeStore) -> None:
    await store.import_files([("a.md", ARTICLE), ("c.csv", CSV)], editor="ana")
    only_kit = (
        b"sku,name,description,price,currency,stock,category\nKIT-VIAL,Kit vial,x,899,MXN,3,A\n"
    )
    report = await store.import_files([("c.csv", only_kit)], editor="ana", replace=True)
    assert report.removed_products == ("AUTO-AMP",)
    assert report.removed_articles == ()  # no Markdown in this import: articles untouched
    assert (await store.get_product("AUTO-AMP")).deleted
    assert not (await store.get_article("formas-pago")).deleted


async def test_replace_skipped_when_a_file_fails(store: KnowledgeStore) -> None:
    await store.import_files([("c.csv", CSV)], editor="ana")
    report = await store.import_files(
        [("ok.md", ARTICLE), ("bad.csv", b"sku,name\nX,Y\n")], editor="ana", replace=True
    )
    assert report.replace_skipped and not (await store.get_product("AUTO-AMP")).deleted


async def test_bad_files_are_rejected_whole_with_file_and_line(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bad_price = CSV + b"GPS,Localizador,x,\"$2,490.00\",MXN,1,Accesorios\n"
    files = [
        ("empty.md", b""),
        ("nobody.md", b"---\nid: vacio\ntitle: Vacio\n---\n\n"),
        ("broken.md", b"---\nid: roto\ntitle: [sin cerrar\n---\ntexto\n"),
        ("noid.md", b"---\ntitle: Sin id\n---\ntexto\n"),
        ("kind.md", b"---\nid: k\ntitle: K\nkind: blog\n---\ntexto\n"),
        ("huge.md", b"---\nid: huge\ntitle: Huge\n---\n" + b"x" * 100_001),
        ("columns.csv", b"sku,nombre,price\nA,B,1\n"),
        ("price.csv", bad_price),
        ("stock.csv", b"sku,name,description,price,currency,stock,category\nA,B,c,1.00,MXN,-2,x\n"),
        ("dup.csv", CSV + b"AUTO-AMP,Otra vez,x,1.00,MXN,,Auto\n"),
        ("notes.txt", b"hola"),
    ]
    report = await store.import_files(files, editor="ana")
    by_name = {f.source: f for f in report.files}
    assert all(not f.ok for f in report.files), [f for f in report.files if f.ok]
    assert "empty" in (by_name["empty.md"].error or "")
    assert "body is empty" in (by_name["nobody.md"].error or "")
    assert "front matter" in (by_name["broken.md"].error or "") and by_name["broken.md"].line == 3
    assert "'id'" in (by_name["noid.md"].error or "")
    assert "kind" in (by_name["kind.md"].error or "")
    assert "limit" in (by_name["huge.md"].error or "")
    assert "missing" in (by_name["columns.csv"].error or "") and by_name["columns.csv"].line == 1
    assert "bad price" in (by_name["price.csv"].error or "") and by_name["price.csv"].line == 4
    assert "negative" in (by_name["stock.csv"].error or "") and by_name["stock.csv"].line == 2
    assert "duplicate sku" in (by_name["dup.csv"].error or "") and by_name["dup.csv"].line == 4
    assert "unsupported" in (by_name["notes.txt"].error or "")
    # nothing of a bad CSV was imported, not even its good first rows
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Product)) == 0


async def test_duplicate_ids_across_files_fail_both(store: KnowledgeStore) -> None:
    report = await store.import_files([("a.md", ARTICLE), ("b.md", ARTICLE)], editor="ana")
    assert len(report.failed) == 2
    assert "also in b.md" in (report.files[0].error or "")


async def test_html_is_stored_but_never_reaches_chunks(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = b"---\nid: xss\ntitle: XSS\n---\nHola <script>alert(1)</script> <b>mundo</b>\n"
    assert not (await store.import_files([("x.md", body)], editor="ana")).failed
    assert "<script>" in (await store.get_article("xss")).body
    async with sessions() as s:
        texts = (await s.scalars(select(Chunk.text).where(Chunk.source_id == "xss"))).all()
    assert texts and all("<" not in t and "alert" not in t for t in texts)


async def test_model_change_reembeds(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", ARTICLE)], editor="ana")
    other = KnowledgeStore(sessions, HashingEmbedder(dimensions=512))

    class Renamed(HashingEmbedder):
        @property
        def name(self) -> str:
            return "another-model"

    renamed = KnowledgeStore(sessions, Renamed())
    assert await other.reembed() == 0  # same model name: nothing to do
    assert await renamed.reembed() == 2
    async with sessions() as s:
        models = set((await s.scalars(select(Chunk.model))).all())
    assert models == {"another-model"}


def test_chunking_keeps_heading_path_and_splits_long_sections() -> None:
    body = "# Auto\n\nIntro.\n\n## Deducibles\n\n" + "\n\n".join(
        f"Parrafo {i} " + "palabra " * 60 for i in range(6)
    ) + "\n\n```\n# no es titulo\n```\n"
    chunks = chunk_markdown(body)
    assert chunks[0].heading == "Auto"
    assert all(c.heading == "Auto › Deducibles" for c in chunks[1:])
    assert len(chunks) > 2 and all(len(c.text) <= 1100 for c in chunks)
    assert "# no es titulo" in chunks[-1].text

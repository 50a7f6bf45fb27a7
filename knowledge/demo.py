"""The demo knowledge base that ships with Atiende (a Mexican insurance agency)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from knowledge.store import ImportReport, KnowledgeStore


def demo_files() -> list[tuple[str, bytes]]:
    """(name, content) of every demo article and the demo catalog."""
    root = resources.files("knowledge").joinpath("demo")
    files: list[tuple[str, bytes]] = []
    articles: Traversable = root.joinpath("articles")
    for entry in sorted(articles.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            files.append((f"demo/articles/{entry.name}", entry.read_bytes()))
    files.append(("demo/catalog.csv", root.joinpath("catalog.csv").read_bytes()))
    return files


async def load_demo_if_empty(store: KnowledgeStore) -> ImportReport | None:
    """Import the demo knowledge base when there are no articles and no products."""
    if not await store.is_empty():
        return None
    return await store.import_files(demo_files(), editor="demo")

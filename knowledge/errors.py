"""Knowledge-base errors (``knowledge`` never imports ``bot``; the API maps these).

    KnowledgeError
    ├── DocumentError        a file or record that cannot be imported (``source``, ``line``)
    ├── EntryNotFound        an article id / product sku / version that does not exist
    └── EmbeddingError       the embedding model failed or gave the wrong shape
"""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base of every error the knowledge base raises on purpose."""


class DocumentError(KnowledgeError):
    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.reason = reason
        self.line = line


class EntryNotFound(KnowledgeError):
    pass


class EmbeddingError(KnowledgeError):
    pass

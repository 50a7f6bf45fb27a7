"""Knowledge-base errors (``knowledge`` never imports ``bot``; the API maps these).

    KnowledgeError
    ├── DocumentError        a file or record that cannot be imported (``source``, ``line``)
    ├── EntryNotFound        an article id / product sku / version that does not exist
    ├── SuggestionConflict   a suggestion already approved or dismissed (``status``)
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


class SuggestionConflict(KnowledgeError):
    """The suggestion was already decided (approved as ``article_id``, or dismissed), or
    the article it extends changed meanwhile: nothing was written."""

    def __init__(self, reason: str, *, status: str, article_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.article_id = article_id

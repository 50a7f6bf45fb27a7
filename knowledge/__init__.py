"""The knowledge base: articles, products, ingestion, chunking, embeddings, retrieval."""

from knowledge.config import KnowledgeConfig
from knowledge.documents import ArticleDoc, ProductDoc, parse_csv, parse_markdown
from knowledge.embeddings import Embedder, HashingEmbedder
from knowledge.errors import DocumentError, EmbeddingError, EntryNotFound, KnowledgeError
from knowledge.intents import IntentExamples, NearestExamples
from knowledge.retrieval import Hit, Retrieval, Retriever
from knowledge.store import ImportReport, KnowledgeStore

__all__ = [
    "ArticleDoc",
    "DocumentError",
    "Embedder",
    "EmbeddingError",
    "EntryNotFound",
    "HashingEmbedder",
    "Hit",
    "ImportReport",
    "IntentExamples",
    "KnowledgeConfig",
    "KnowledgeError",
    "KnowledgeStore",
    "NearestExamples",
    "ProductDoc",
    "Retrieval",
    "Retriever",
    "parse_csv",
    "parse_markdown",
]

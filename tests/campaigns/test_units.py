"""Pure parts of campaigns: CSV lists, templates, schedule windows, pacing values."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from bot.campaigns.csvlist import CsvListError, parse_contacts_csv
from bot.campaigns.schedule import Pacing, Window, WindowError
from bot.campaigns.templating import TemplateError, render, validate_variants, values_for


def test_csv_normalizes_mexican_forms_and_explains_rejections() -> None:
    data = (
        "Teléfono;Nombre;Monto Crédito;Fecha límite\n"
        "55 1234 5678;Ana López;$5,000;15/12\n"
        "+52 1 55 1234 5678;Ana otra vez;$1;1/1\n"  # same number in its +521 form
        "5215587654321;Beto;$7,500;20/12\n"
        ";Sin número;;\n"
        "12ab;Malo;;\n"
        "\n"
        "(33) 3333-4444;Carla;$900;01/01\n"
    ).encode()
    parsed = parse_contacts_csv(data)
    assert parsed.fields == ["monto_credito", "fecha_limite"]
    assert [(r.phone_e164, r.name) for r in parsed.rows] == [
        ("+525512345678", "Ana López"), ("+525587654321", "Beto"), ("+523333334444", "Carla"),
    ]
    assert parsed.rows[0].fields == {"monto_credito": "$5,000", "fecha_limite": "15/12"}
    assert [(r.row_number, r.reason) for r in parsed.rejected] == [
        (3, "duplicate"), (5, "missing_phone"), (6, "invalid_phone"),
    ]
    assert parsed.rejected[0].detail == "same number as row 2"
    assert parsed.total_rows == 6


def test_csv_from_excel_in_cp1252_and_without_phone_column() -> None:
    parsed = parse_contacts_csv("celular,nombre\n5512345678,José Ñandú\n".encode("cp1252"))
    assert parsed.rows[0].name == "José Ñandú"
    with pytest.raises(CsvListError, match="no phone column"):
        parse_contacts_csv(b"nombre,correo\nAna,a@b.mx\n")
    with pytest.raises(CsvListError, match="empty"):
        parse_contacts_csv(b"  \n")


def test_template_variables_are_checked_and_never_reach_python_objects() -> None:
    assert validate_variants(["Hola {nombre}, debes {monto}", "{nombre}: {monto}"], ["monto"]) == [
        "nombre", "monto",
    ]
    with pytest.raises(TemplateError, match="unknown variable"):
        validate_variants(["Hola {nombre}, tu saldo es {saldo}"], ["monto"])
    with pytest.raises(TemplateError, match="at least one"):
        validate_variants([], [])
    values = values_for("Ana López", "+525512345678", {"monto": "$5,000"})
    assert render("Hola {nombre} 👋, {monto} {nombre.__class__} {x[0]}", values) == (
        "Hola Ana López 👋, $5,000 {nombre.__class__} {x[0]}"
    )
    with pytest.raises(TemplateError, match="monto"):
        render("Debes {monto}", values_for("Ana", "+525512345678", {"monto": " "}))


def test_window_in_the_campaign_time_zone() -> None:
    window = Window(days=(0, 1, 2, 3, 4), start=time(9), end=time(18),
                    timezone="America/Mexico_City")
    # Friday 2026-01-02 17:59 in Mexico City (UTC-6) is open; 18:00 is closed
    assert window.is_open(datetime(2026, 1, 2, 23, 59, tzinfo=UTC))
    assert not window.is_open(datetime(2026, 1, 3, 0, 0, tzinfo=UTC))
    # … and the next opening is Monday 09:00 local = 15:00 UTC
    assert window.next_open(datetime(2026, 1, 3, 0, 0, tzinfo=UTC)) == datetime(
        2026, 1, 5, 15, 0, tzinfo=UTC
    )
    assert window.next_day_open(datetime(2026, 1, 5, 16, 0, tzinfo=UTC)) == datetime(
        2026, 1, 6, 15, 0, tzinfo=UTC
    )
    assert Window.from_json(window.to_json()) == window
    late = Window(days=(6,), start=time(0), end=time(23, 59, 59, 999999))
    assert Window.from_json(late.to_json()) == late


def test_bad_windows_and_pacing_are_refused() -> None:
    with pytest.raises(WindowError, match="time zone"):
        Window(timezone="Mars/Olympus")
    with pytest.raises(WindowError, match="start"):
        Window(start=time(18), end=time(9))
    with pytest.raises(WindowError, match="days"):
        Window(days=())
    with pytest.raises(WindowError, match="burst"):
        Pacing(burst_min=5, burst_max=2)
    with pytest.raises(WindowError, match="caps"):
        Pacing(per_hour=0)

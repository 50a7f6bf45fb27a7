"""The real neonize 0.5.2 (no fakes), offline, against the tests' real PostgreSQL.

What the library does here for real: whatsmeow's store creation and upgrade, the device
lookups before a resume, the dial that fails (no internet), a Go panic (a resume of a
device the store lacks, with the check turned off), the store connections it opens.
Each number's client runs in its own process, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.channels.numbers import NumberRecord
from bot.channels.session_process import ProcessSession
from bot.channels.session_wire import HostConfig
from bot.channels.supervisor import Session
from bot.channels.wa_events import ConnectionEvent, ConnState
from bot.channels.wa_store import application_name, database_name, prepare_store, store_url
from bot.errors import ChannelError, ChannelRefused, ChannelUnavailable, SessionStoreError
from bot.messages import MessageKind
from bot.wiring.runtime import Runtime
from tests.channels.neonize_fakes import (
    Sessions,
    client_of,
    feed,
    linked,
    login,
    message_event,
    number_state,
    text,
    until,
)
from tests.channels.real_store import SCHEMA, RealStore, make_real_store, real_settings
from tests.conftest import app_client

pytestmark = pytest.mark.neonize_real

BUSINESS = "+525511110000"
OTHER = "+525522220000"
THIRD = "+525533330000"
DEVICE = "5215511110000:4@s.whatsapp.net"
OTHER_DEVICE = "5215522220000:3@s.whatsapp.net"
MISSING = "5215511110000:9@s.whatsapp.net"
DIAL = "cannot reach WhatsApp's servers"
# measured: a number's client holds 2 store connections at rest (whatsmeow's device listing
# and its client container); whatsmeow's pool may open more under load (README).
AT_REST = 2


async def first_event(session: ProcessSession, timeout: float = 30) -> ConnectionEvent:
    event = await asyncio.wait_for(session.events.get(), timeout)
    assert isinstance(event, ConnectionEvent)
    return event


async def run_once(session: ProcessSession) -> ConnectionEvent:
    await session.start()
    try:
        return await first_event(session)
    finally:
        await session.stop()


@pytest.fixture
async def real_runtime(
    tmp_path: Path, database_url: str, redis_url: str, real_store: RealStore,
) -> AsyncIterator[Runtime]:
    """The production wiring: real neonize in a client process per number."""
    rt = await Runtime.create(real_settings(tmp_path), database_url=database_url,
                              redis_url=redis_url)
    rt.start_worker()
    yield rt
    await rt.close()
    assert await real_store.all_closed()


async def test_numbers_starting_together_create_the_store_once(real_store: RealStore) -> None:
    sessions = [real_store.session(a) for a in (BUSINESS, OTHER, THIRD)]
    await asyncio.gather(*(s.start() for s in sessions))  # an empty store: they would race
    try:
        events = [await first_event(s) for s in sessions]
    finally:
        await asyncio.gather(*(s.stop() for s in sessions))
    for event in events:
        assert event.state is ConnState.FAILED, event
        assert DIAL in (event.detail or "") and "upgrade" not in (event.detail or "")
    tables = real_store.tables()
    assert len(tables) == 17 and set(tables) == {(SCHEMA, real_store.role)}
    assert await real_store.all_closed()


def test_failed_upgrade_is_retried_and_a_newer_schema_is_not(real_store: RealStore) -> None:
    url = real_store.host(BUSINESS).store
    race = ('error: failed to upgrade database: failed to run upgrade v0->v15: pq: duplicate '
            'key value violates unique constraint "pg_type_typname_nsp_index" (23505)')
    calls: list[str] = []

    def flaky(store: str) -> list[str]:
        calls.append(store)
        if len(calls) == 1:
            raise SessionStoreError("race", raw=race)
        return [DEVICE]

    assert prepare_store(url, flaky, sleep=lambda _: None) == [DEVICE]
    assert len(calls) == 2
    newer = ("error: failed to upgrade database: unsupported database schema version: "
             "currently on v99 (compatible down to v99), latest known: v15")

    def too_new(store: str) -> list[str]:
        calls.append(store)
        raise SessionStoreError("newer", raw=newer)

    with pytest.raises(SessionStoreError):
        prepare_store(url, too_new, sleep=lambda _: None)
    assert len(calls) == 3  # not retried


async def test_resume_looks_the_device_up_first(real_store: RealStore) -> None:
    assert DIAL in ((await run_once(real_store.session(BUSINESS))).detail or "")  # tables
    real_store.add_device(DEVICE)
    present = await run_once(real_store.session(BUSINESS, DEVICE))
    assert present.state is ConnState.FAILED and DIAL in (present.detail or "")
    missing = await run_once(real_store.session(BUSINESS, MISSING))
    assert missing.state is ConnState.NEEDS_LINK
    assert "not in the WhatsApp session store" in (missing.detail or "")
    assert MISSING in (missing.detail or "")
    assert await real_store.all_closed()


async def test_a_go_panic_ends_only_that_numbers_process(real_store: RealStore) -> None:
    await run_once(real_store.session(OTHER))  # whatsmeow's tables
    crashing = real_store.session(BUSINESS, MISSING, verify=False)  # whatsmeow.NewClient(nil)
    other = real_store.session(OTHER)
    await asyncio.gather(crashing.start(), other.start())
    try:
        crash = await first_event(crashing)
        assert crash.state is ConnState.FAILED
        assert "crashed (SIGABRT)" in (crash.detail or "")
        assert "invalid memory address or nil pointer dereference" in (crash.detail or "")
        assert (await first_event(other)).state is ConnState.FAILED  # its own dial
        assert await other.ping()  # still running, still answering
    finally:
        await asyncio.gather(crashing.stop(), other.stop())
    assert await real_store.all_closed()


async def test_requests_over_the_pipe_get_the_libraries_answers(real_store: RealStore) -> None:
    await run_once(real_store.session(BUSINESS))
    real_store.add_device(DEVICE)
    session = real_store.session(BUSINESS, DEVICE)
    await session.start()
    try:
        assert (await first_event(session)).state is ConnState.FAILED  # offline: not connected
        with pytest.raises(ChannelError, match="send failed: .*websocket not connected"):
            await session.send_text("+525512345678", "hola")
        with pytest.raises(ChannelError, match="presence failed"):
            await session.typing("+525512345678", active=True)
        with pytest.raises(ChannelError, match="mark read failed"):
            await session.mark_read("3EB0ABC", "+525512345678")
        with pytest.raises(ChannelError, match="pairing code failed"):
            await session.pairing_code("+525511110000")
        with pytest.raises(ChannelRefused, match="UnidentifiedImageError"):  # not a picture
            await session.send_media("+525512345678", MessageKind.IMAGE, b"\x89PNG broken",
                                     caption="póliza", filename=None, mime_type="image/png")
        assert await session.ping()
    finally:
        await session.stop()
    assert not session.running and await real_store.all_closed()
    with pytest.raises(ChannelUnavailable):  # stopped: asked again, it says so at once
        await session.send_text("+525512345678", "hola")


async def test_stop_closes_every_store_connection(real_store: RealStore) -> None:
    await run_once(real_store.session(BUSINESS))
    real_store.add_device(DEVICE)
    for _ in range(3):
        session = real_store.session(BUSINESS, DEVICE)
        await session.start()
        await first_event(session)
        open_now = real_store.connections().get(application_name(BUSINESS), 0)
        assert 1 <= open_now <= AT_REST
        await session.stop()
        assert await real_store.all_closed()


async def test_store_role_touches_only_its_schema(real_store: RealStore) -> None:
    await run_once(real_store.session(BUSINESS))
    url = real_store.host(BUSINESS).store
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM whatsmeow_device").fetchone() == (0,)
        assert conn.execute("SHOW search_path").fetchone() == (SCHEMA,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM public.messages")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.intruder (x int)")
    provisioner = real_store.store.provisioner
    assert provisioner is not None
    with real_store.admin() as conn:
        limit = conn.execute("SELECT rolconnlimit, rolsuper, rolcreaterole FROM pg_roles "
                             "WHERE rolname = %s", (real_store.role,)).fetchone()
    assert limit == (provisioner.limit(5), False, False)
    assert await provisioner.ensure(2)
    with real_store.admin() as conn:
        assert conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s",
                            (real_store.role,)).fetchone() == (provisioner.limit(2),)


async def test_tables_an_older_atiende_left_in_the_app_schema_move(
    database_url: str, real_store: RealStore,
) -> None:
    with real_store.admin() as conn:  # as before: the store was the app database itself
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    old = ProcessSession(HostConfig(account=BUSINESS, store=store_url(database_url),
                                    session_id="atiende-525511110000", jid=None))
    assert DIAL in ((await run_once(old)).detail or "")
    assert {s for s, _ in real_store.tables()} == {"public"}
    with real_store.admin() as conn:
        conn.execute(f"CREATE SCHEMA {SCHEMA}")  # present, empty: the tables still move
    provisioner = make_real_store(database_url).store.provisioner  # the upgraded Atiende
    assert provisioner is not None
    assert await provisioner.ensure(1)
    assert set(real_store.tables()) == {(SCHEMA, real_store.role)}
    real_store.add_device(DEVICE)
    resumed = await run_once(real_store.session(BUSINESS, DEVICE))
    assert resumed.state is ConnState.FAILED and DIAL in (resumed.detail or "")


# --- through the supervisor, the page and the alerts ---------------------------------------


async def test_dial_failures_restart_then_fail_with_an_alert(
    real_runtime: Runtime, real_store: RealStore,
) -> None:
    book = real_runtime.whatsapp.book
    async with real_runtime.events.subscribe("admin:alerts") as alerts:
        await book.add(BUSINESS, "Ventas")
        await book.request_link(BUSINESS, pairing_phone=None)

        async def failed() -> bool:
            return (await number_state(real_runtime)).state == "failed"

        await until(failed, 60)
        alert = await asyncio.wait_for(alerts.get(), 5)
    record = await number_state(real_runtime)
    assert record.restarts == 1 and "gave up after 1 restarts" in (record.detail or "")
    assert DIAL in (record.detail or "")
    assert alert["account"] == BUSINESS and alert["state"] == "failed"
    assert real_runtime.whatsapp.pool is not None and not real_runtime.whatsapp.pool.running()
    gauge = f'atiende_whatsapp_store_connections{{account="{BUSINESS}"}}'

    async def counted_closed() -> bool:  # the pool counts them at every check
        return f"{gauge} 0.0" in real_runtime.metrics.render().decode()

    await until(counted_closed, 10)


async def test_missing_device_needs_linking_and_a_new_link_starts_fresh(
    real_runtime: Runtime, real_store: RealStore,
) -> None:
    book = real_runtime.whatsapp.book
    await book.add(BUSINESS, "Ventas")
    await book.update(BUSINESS, jid=MISSING, enabled=True, state="connecting")

    async def needs_link() -> bool:
        return (await number_state(real_runtime)).state == "needs_link"

    await until(needs_link, 60)
    record = await number_state(real_runtime)
    assert record.jid is None and "not in the WhatsApp session store" in (record.detail or "")
    await asyncio.sleep(0.5)
    assert (await number_state(real_runtime)).state == "needs_link"  # waits for an admin
    await book.request_link(BUSINESS, pairing_phone=None)

    async def dialled_fresh() -> bool:  # a new device: whatsmeow tries WhatsApp for a QR
        record = await number_state(real_runtime)
        return record.state == "failed" and DIAL in (record.detail or "")

    await until(dialled_fresh, 60)


async def test_a_device_of_another_number_is_not_resumed(
    real_runtime: Runtime, real_store: RealStore,
) -> None:
    await run_once(real_store.session(OTHER))  # whatsmeow's tables
    real_store.add_device(OTHER_DEVICE)
    book = real_runtime.whatsapp.book
    await book.add(BUSINESS, "Ventas")
    await book.add(OTHER, "Cobranza")
    await book.update(BUSINESS, jid=OTHER_DEVICE, enabled=True, state="connecting")
    await book.update(OTHER, jid=OTHER_DEVICE, enabled=True, state="connecting")

    async def settled() -> bool:
        states = [(await number_state(real_runtime, a)).state for a in (BUSINESS, OTHER)]
        return states == ["needs_link", "failed"]

    await until(settled, 60)
    mixed_up = await number_state(real_runtime, BUSINESS)
    assert mixed_up.jid is None
    assert f"is {OTHER}'s, not this number's" in (mixed_up.detail or "")
    other = await number_state(real_runtime, OTHER)
    assert other.jid == OTHER_DEVICE  # untouched: its own device, resumed (then the dial)
    assert DIAL in (other.detail or "")


@pytest.mark.parametrize(
    "case", ["wrong password", "missing database", "unreachable socket", "newer schema"])
async def test_a_bad_store_is_said_plainly_on_the_page(
    case: str, tmp_path: Path, database_url: str, redis_url: str, real_store: RealStore,
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str],
) -> None:
    socket_dir = database_url.split("host=", 1)[1]
    role = real_store.role
    store_url, expected = {
        "wrong password": (f"postgres://{role}:not-the-password@/{database_name(database_url)}"
                           f"?host={socket_dir}", f'wrong password for the store user "{role}"'),
        "missing database": (f"postgres://postgres@/no_such_db?host={socket_dir}",
                             'the store database "no_such_db" does not exist'),
        "unreachable socket": ("postgres://postgres@/atiende?host=/nonexistent/pg",
                               "nothing listens at /nonexistent/pg/.s.PGSQL.5432"),
        "newer schema": (None, "written by a newer whatsmeow (schema v99; this Atiende "
                               "knows up to v15)"),
    }[case]
    if case == "wrong password":
        request.getfixturevalue("password_auth")
    if case == "newer schema":
        with real_store.admin() as conn:
            conn.execute(f"CREATE TABLE {SCHEMA}.whatsmeow_version (version int, compat int)")
            conn.execute(f"INSERT INTO {SCHEMA}.whatsmeow_version VALUES (99, 99)")
            conn.execute(f"ALTER TABLE {SCHEMA}.whatsmeow_version OWNER TO {role}")
    rt = await Runtime.create(real_settings(tmp_path, store_url=store_url),
                              database_url=database_url, redis_url=redis_url)
    rt.start_worker()
    try:
        await rt.whatsapp.book.add(BUSINESS, "Ventas")
        await rt.whatsapp.book.request_link(BUSINESS, pairing_phone=None)

        async def failed() -> bool:
            return (await number_state(rt)).state == "failed"

        await until(failed, 60)
        async with app_client(rt) as client:
            admin = await login(rt, client, "admin")
            listed = (await client.get("/api/v1/whatsapp/numbers", headers=admin)).json()
    finally:
        await rt.close()
    assert listed[0]["state"] == "failed" and expected in listed[0]["detail"]
    logs = capsys.readouterr()
    assert expected in logs.err + logs.out  # and in the logs


async def test_the_right_password_still_works(real_store: RealStore, password_auth: str) -> None:
    """The wrong-password case above is the server refusing, not a store that never works."""
    event = await run_once(real_store.session(BUSINESS))
    assert DIAL in (event.detail or "")


async def test_a_crashing_number_leaves_the_worker_and_the_others_working(
    tmp_path: Path, database_url: str, redis_url: str, real_store: RealStore,
) -> None:
    """A real Go panic, every restart, in one number; another keeps answering customers."""
    await run_once(real_store.session(OTHER))  # whatsmeow's tables
    fakes = Sessions()
    crashes: list[ProcessSession] = []

    def factory(record: NumberRecord) -> Session:
        if record.account == BUSINESS:
            crashes.append(real_store.session(BUSINESS, MISSING, verify=False))
            return crashes[-1]
        return fakes(record)

    settings = real_settings(tmp_path, restart_cap=2)
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              whatsapp_sessions=factory)
    rt.start_worker()
    try:
        healthy = await linked(rt, fakes, OTHER)
        await rt.whatsapp.book.add(BUSINESS, "Ventas")
        await rt.whatsapp.book.update(BUSINESS, jid=MISSING, enabled=True, state="connecting")

        async def crashed_once() -> bool:
            return (await number_state(rt, BUSINESS)).restarts >= 1

        await until(crashed_once, 60)
        feed(healthy.client, message_event("3EB0SIGUE", text("hola, ¿siguen abiertos?")))

        async def answered() -> bool:
            return any(c[0] == "send_message" for c in client_of(healthy).calls)

        await until(answered, 30)

        async def gave_up() -> bool:
            return (await number_state(rt, BUSINESS)).state == "failed"

        await until(gave_up, 60)
        record = await number_state(rt, BUSINESS)
        assert "crashed (SIGABRT)" in (record.detail or "") and len(crashes) == 3  # 1 + 2
        assert (await number_state(rt, OTHER)).state == "connected"
        assert rt.whatsapp.live.accounts() == [OTHER]
    finally:
        await rt.close()
    assert await real_store.all_closed()
    assert len({c.pid for c in crashes}) == 3  # three processes crashed; this one did not

"""A number's session run in its own client process (``neonize_host``), seen from the worker.

``ProcessSession`` is the ``Session`` the supervisor runs for a real number: ``start``
spawns the process and returns at once; events come back on ``events``; sends, presence,
read marks, pairing codes and media downloads are requests over the pipe
(``session_wire``). If the process dies (a Go panic, the OOM killer, kill -9) the session
reports a ``FAILED`` event naming the exit and the panic line, so the supervisor restarts
it with backoff; nothing else in the worker is touched. ``stop`` asks the process to stop,
and kills it when it does not leave in time: its store connections close with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

from bot.channels.session_wire import (
    LINE_LIMIT,
    HostConfig,
    SessionEvent,
    b64,
    decode_error,
    decode_event,
    dumps,
    unb64,
)
from bot.channels.wa_events import WHATSAPP_CHANNEL, ConnectionEvent, ConnState, MediaDownload
from bot.errors import ChannelError, ChannelUnavailable
from bot.logs import get_logger
from bot.messages import MessageKind

log = get_logger("atiende.whatsapp.process")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# States after which the supervisor ends the session (see NumberSupervisor._on_connection).
_ONGOING = frozenset({ConnState.CONNECTING, ConnState.PAIRING, ConnState.CONNECTED,
                      ConnState.DISCONNECTED})


def describe_exit(code: int, tail: list[str]) -> str:
    """``the WhatsApp client process crashed (SIGABRT): panic: runtime error: …``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"crashed ({name})"
    else:
        how = f"ended (exit code {code})"
    telling = next((line for line in tail if line.startswith(("panic:", "fatal error:"))),
                   next((line for line in reversed(tail) if line.strip()), ""))
    detail = f"the WhatsApp client process {how}"
    return f"{detail}: {telling.strip()[:300]}" if telling else detail


class ProcessSession:
    """One number's client process; implements the supervisor's ``Session``."""

    def __init__(
        self, config: HostConfig, *, call_timeout: float = 120.0, stop_timeout: float = 10.0,
        python: str = sys.executable,
    ) -> None:
        self.account = config.account
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._config = config
        self._call_timeout = call_timeout
        self._stop_timeout = stop_timeout
        self._python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._tail: deque[str] = deque(maxlen=40)
        self._stopping = False
        self._ended = False  # a session-ending event was already relayed

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def exit_code(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self._python, "-m", "bot.channels.neonize_host",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, limit=LINE_LIMIT,
            )
        except OSError as exc:
            raise ChannelError(f"cannot start the WhatsApp client process: {exc}",
                               channel=WHATSAPP_CHANNEL) from exc
        log.info("whatsapp.client_started", account=self.account, pid=self._proc.pid)
        reader = asyncio.create_task(self._read(), name=f"wa-read-{self.account}")
        logs = asyncio.create_task(self._relay_logs(), name=f"wa-logs-{self.account}")
        self._tasks = [reader, logs,
                       asyncio.create_task(self._watch(reader, logs), name=f"wa-{self.account}")]
        await self._write(self._config.line())

    async def _write(self, line: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise ChannelUnavailable(f"the WhatsApp client of {self.account} is not running",
                                     channel=WHATSAPP_CHANNEL, retry_after=15.0)
        try:
            proc.stdin.write(line)
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelUnavailable(f"the WhatsApp client of {self.account} went away",
                                     channel=WHATSAPP_CHANNEL, retry_after=15.0) from exc

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("whatsapp.client_garbled", account=self.account, line=line[:200])
                continue
            if "event" in message:
                try:
                    event = decode_event(message["event"], self._download_for)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("whatsapp.client_bad_event", account=self.account,
                                error=repr(exc))
                    continue
                if isinstance(event, ConnectionEvent) and event.state not in _ONGOING:
                    self._ended = True
                if not self._stopping:
                    self.events.put_nowait(event)
                continue
            future = self._pending.pop(int(message.get("id") or 0), None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(decode_error(message["error"], WHATSAPP_CHANNEL))
            else:
                future.set_result(message.get("ok"))

    async def _relay_logs(self) -> None:
        """The process's logs (and a Go panic's text) go to ours; the tail explains a crash."""
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace")
            self._tail.append(text.rstrip("\n"))
            sys.stderr.write(text)

    async def _watch(self, reader: asyncio.Task[None], logs: asyncio.Task[None]) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        await asyncio.gather(reader, logs, return_exceptions=True)  # every event, every line
        self._fail_pending()
        if self._stopping or self._ended:
            return
        detail = describe_exit(code, list(self._tail))
        log.error("whatsapp.client_crashed", account=self.account, code=code, detail=detail)
        self._ended = True
        self.events.put_nowait(ConnectionEvent(self.account, ConnState.FAILED, detail=detail))

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelUnavailable(
                    f"the WhatsApp client of {self.account} stopped",
                    channel=WHATSAPP_CHANNEL, retry_after=15.0))
        self._pending.clear()

    async def stop(self) -> None:
        """Ask the process to stop; kill it after ``stop_timeout``. Idempotent."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ChannelError):
                await self._write(dumps({"id": 0, "op": "stop"}))
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout)
            except TimeoutError:
                log.warning("whatsapp.client_killed", account=self.account, pid=proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_pending()

    async def _call(self, op: str, **args: Any) -> Any:
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            await self._write(dumps({"id": ident, "op": op, "args": args}))
            return await asyncio.wait_for(future, self._call_timeout)
        except TimeoutError:
            raise ChannelUnavailable(
                f"{op}: no answer from the WhatsApp client in {self._call_timeout:.0f}s",
                channel=WHATSAPP_CHANNEL, retry_after=15.0) from None
        finally:
            self._pending.pop(ident, None)

    def _download_for(self, message_id: str) -> MediaDownload:
        async def download() -> bytes:
            return unb64(str(await self._call("download", message_id=message_id)))

        return download

    # --- the Session / WaSession surface ---------------------------------------------------

    async def ping(self) -> bool:
        return bool(await self._call("ping") == "pong")

    async def pairing_code(self, phone: str) -> str:
        return str(await self._call("pairing_code", phone=phone))

    async def send_text(self, to_phone: str, text: str) -> str:
        return str(await self._call("send_text", to=to_phone, text=text))

    async def send_media(
        self, to_phone: str, kind: MessageKind, data: bytes, *, caption: str | None,
        filename: str | None, mime_type: str | None,
    ) -> str:
        return str(await self._call(
            "send_media", to=to_phone, kind=kind.value, b64=b64(data), caption=caption,
            filename=filename, mime_type=mime_type))

    async def typing(self, to_phone: str, *, active: bool) -> None:
        await self._call("typing", to=to_phone, active=active)

    async def mark_read(self, message_id: str, from_phone: str) -> None:
        await self._call("mark_read", message_id=message_id, from_phone=from_phone)

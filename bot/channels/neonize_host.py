"""One number's WhatsApp client in a process of its own: ``python -m bot.channels.neonize_host``.

whatsmeow runs inside neonize's Go library, and a Go panic (a nil pointer on a device the
store lacks, neonize issue #96's SIGSEGV) ends the whole process. So each number's
client lives here, started and watched by the worker (``session_process``): a crash ends
this number's session only, the worker restarts it with backoff, and the OS closes every
store connection the process opened (whatsmeow's ``stop`` leaves one open per connect).

Steps: prepare the store (whatsmeow's tables, under the advisory lock), check that the
device to resume is in it, connect, then relay events out and requests in
(``session_wire``) until told to stop or the worker goes away (stdin closes).
The protocol goes out on the original stdout; fd 1 is pointed at stderr so nothing
printed by a library can corrupt it. Logs and Go's panic text go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import OrderedDict
from typing import Any

from bot.channels.neonize_adapter import NeonizeSession, store_devices
from bot.channels.session_wire import (
    LINE_LIMIT,
    HostConfig,
    SessionEvent,
    b64,
    dumps,
    encode_error,
    encode_event,
    unb64,
)
from bot.channels.wa_events import (
    ConnectionEvent,
    ConnState,
    DeviceJid,
    IncomingMessage,
    MediaDownload,
)
from bot.channels.wa_store import prepare_store
from bot.errors import AtiendeError, ChannelError, ChannelRefused, SessionStoreError
from bot.logs import configure_logging, get_logger
from bot.messages import MessageKind

log = get_logger("atiende.neonize.host")

KEPT_DOWNLOADS = 256  # media of the latest messages the worker may still fetch


class Host:
    """Runs one ``NeonizeSession`` and serves the worker's requests on it."""

    def __init__(self, config: HostConfig, out: asyncio.StreamWriter) -> None:
        self.config = config
        self._out = out
        self._session: NeonizeSession | None = None
        self._downloads: OrderedDict[str, MediaDownload] = OrderedDict()
        self._requests: set[asyncio.Task[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        self._out.write(dumps(message))
        await self._out.drain()

    async def emit(self, state: ConnState, detail: str) -> None:
        event = ConnectionEvent(self.config.account, state, detail=detail)
        await self.send({"event": encode_event(event)})

    async def open(self) -> NeonizeSession | None:
        """Store ready, device present, connecting; None (and an event said why) if not."""
        config = self.config
        try:
            devices = await asyncio.to_thread(prepare_store, config.store, store_devices)
        except SessionStoreError as exc:
            await self.emit(ConnState.FAILED, str(exc))
            return None
        if config.jid and config.verify_device:
            wanted = DeviceJid.parse(config.jid)
            if wanted not in {DeviceJid.parse(d) for d in devices}:
                await self.emit(ConnState.NEEDS_LINK, (
                    f"the linked device {wanted} is not in the WhatsApp session store (wiped, "
                    "moved, or not restored with a backup): link the number again"))
                return None
        session = NeonizeSession(account=config.account, store=config.store,
                                 session_id=config.session_id, jid=config.jid,
                                 default_region=config.region)
        try:
            await session.start()
        except ChannelError as exc:
            await self.emit(ConnState.FAILED, str(exc))
            return None
        self._session = session
        return session

    async def pump(self, session: NeonizeSession) -> None:
        while True:
            event: SessionEvent = await session.events.get()
            if isinstance(event, IncomingMessage) and event.download is not None:
                self._downloads[event.message_id] = event.download
                while len(self._downloads) > KEPT_DOWNLOADS:
                    self._downloads.popitem(last=False)
            await self.send({"event": encode_event(event)})

    def request(self, message: dict[str, Any]) -> None:
        task = asyncio.create_task(self._answer(message))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        op = str(message.get("op"))
        try:
            value = await self._run(op, message.get("args") or {})
        except AtiendeError as exc:
            await self.send({"id": message.get("id"), "error": encode_error(exc)})
        except Exception as exc:
            # The process boundary: every request gets an answer. neonize raises more than
            # NeonizeError (an image PIL cannot read, ffmpeg refusing an audio file): then
            # the media itself is bad and sending it again cannot help.
            log.warning("neonize.request_failed", account=self.config.account, op=op,
                        error=repr(exc), exc_info=True)
            what = f"{op} failed: {type(exc).__name__}: {exc}"
            error = (ChannelRefused(what, channel="whatsapp") if op == "send_media"
                     else ChannelError(what, channel="whatsapp"))
            await self.send({"id": message.get("id"), "error": encode_error(error)})
        else:
            await self.send({"id": message.get("id"), "ok": value})

    async def _run(self, op: str, args: dict[str, Any]) -> Any:
        session = self._session
        if op == "ping":
            return "pong"
        if session is None:
            raise ChannelError("the WhatsApp client is not connected", channel="whatsapp")
        if op == "send_text":
            return await session.send_text(args["to"], args["text"])
        if op == "send_media":
            return await session.send_media(
                args["to"], MessageKind(args["kind"]), unb64(args["b64"]),
                caption=args.get("caption"), filename=args.get("filename"),
                mime_type=args.get("mime_type"))
        if op == "typing":
            await session.typing(args["to"], active=bool(args["active"]))
            return None
        if op == "mark_read":
            await session.mark_read(args["message_id"], args["from_phone"])
            return None
        if op == "pairing_code":
            return await session.pairing_code(args["phone"])
        if op == "download":
            download = self._downloads.get(args["message_id"])
            if download is None:
                raise ChannelRefused("that message's media is no longer held",
                                     channel="whatsapp")
            return b64(await download())
        raise ChannelRefused(f"unknown request {op!r}", channel="whatsapp")

    async def close(self) -> None:
        for task in list(self._requests):
            task.cancel()
        session, self._session = self._session, None
        if session is not None:
            await session.stop()


async def serve(config: HostConfig, reader: asyncio.StreamReader,
                out: asyncio.StreamWriter) -> None:
    host = Host(config, out)
    session = await host.open()
    if session is None:
        return  # the event says why; leaving frees the store connections at once
    pump = asyncio.create_task(host.pump(session))
    try:
        while line := await reader.readline():  # empty: the worker went away
            message = json.loads(line)
            if message.get("op") == "stop":
                await host.close()
                await host.send({"id": message.get("id"), "ok": None})
                return
            host.request(message)
    finally:
        pump.cancel()
        await host.close()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (Go or Python) land in the log, not in the protocol
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(protocol_fd, "wb"))
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    config = HostConfig.parse(await reader.readline())
    configure_logging(config.log_level)
    code = 0
    try:
        await serve(config, reader, out)
        await out.drain()
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.warning("neonize.host_pipe_closed", account=config.account, error=str(exc))
        code = 1
    sys.stderr.flush()
    # Leave now: asyncio.run would wait for the default executor, where Go's blocking
    # Neonize() call may still hold a thread. The OS closes the store connections.
    os._exit(code)


def main() -> None:
    # Ctrl-C reaches the whole process group: the worker stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_main())


if __name__ == "__main__":
    main()

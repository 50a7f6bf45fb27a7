"""Wiring of the channels: simulator, WhatsApp Cloud API, neonize numbers, receipts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.blocking import DeliverySignals
from bot.channels.cloud_api import CloudApiChannel, CloudMediaFetcher, GraphApi, ServiceWindow
from bot.channels.cloud_webhook import CloudWebhook
from bot.channels.receipts import ReceiptRecorder
from bot.channels.simulator import SimulatorChannel
from bot.channels.supervisor import SessionFactory
from bot.channels.wiring import (
    WhatsAppNumbers,
    build_whatsapp,
    neonize_factory,
    neonize_store,
    store_keeper,
)
from bot.conversation.channel import ChannelRegistry
from bot.conversation.ingest import Ingestor
from bot.infra.jobs import JobQueue
from bot.media import MediaStore
from bot.speech.outbound import to_ogg_opus
from bot.wiring.core import Core


@dataclass
class Channels:
    channels: ChannelRegistry
    receipts: ReceiptRecorder
    graph: GraphApi


def build_channels(core: Core, media: MediaStore) -> Channels:
    """The simulator always; the Cloud API channel when its token and number are set."""
    cloud = core.settings.whatsapp_cloud
    channels = ChannelRegistry([SimulatorChannel(core.events)])
    graph = GraphApi(
        base_url=cloud.graph_url,
        access_token=cloud.access_token.get_secret_value() if cloud.access_token else "",
        http=core.http,
    )
    if cloud.access_token and cloud.phone_number_id:
        channels.add(
            CloudApiChannel(
                graph=graph, window=ServiceWindow(core.sessions, core.clock),
                default_phone_number_id=cloud.phone_number_id,
                media=media, to_voice=to_ogg_opus,
                media_max_bytes=core.settings.channels.neonize.media_max_bytes,
            )
        )
    # deliveries clear "probably blocked" marks and prove the number's receipts flow
    receipts = ReceiptRecorder(core.sessions, listener=DeliverySignals(clock=core.clock))
    return Channels(channels, receipts, graph)


@dataclass
class Inlets:
    """What brings customer messages in: neonize numbers and the Cloud API webhook."""

    whatsapp: WhatsAppNumbers
    cloud_webhook: CloudWebhook


def build_inlets(
    core: Core, channels: Channels, *, ingestor: Ingestor, jobs: JobQueue, media: MediaStore,
    whatsapp_sessions: SessionFactory | None,
) -> Inlets:
    """Neonize numbers (their sessions imported only when enabled) and the webhook."""
    settings = core.settings
    neonize, cloud = settings.channels.neonize, settings.whatsapp_cloud
    prepare = None
    if whatsapp_sessions is None and neonize.enabled:
        store = neonize_store(neonize, core.database_url, settings.secret_key.get_secret_value())
        whatsapp_sessions = neonize_factory(neonize, store, settings.default_region,
                                            log_level=settings.log_level)
        prepare = store_keeper(store, core.sessions, core.metrics)
    whatsapp = build_whatsapp(
        neonize, sessions=core.sessions, redis=core.redis, ingestor=ingestor,
        receipts=channels.receipts, metrics=core.metrics, events=core.events, clock=core.clock,
        media=media, factory=whatsapp_sessions, jobs=jobs, prepare=prepare,
        region=settings.default_region,
    )
    if whatsapp.pool is not None:
        channels.channels.add(whatsapp.channel)
    webhook = CloudWebhook(
        verify_token=cloud.verify_token.get_secret_value() if cloud.verify_token else None,
        app_secret=cloud.app_secret.get_secret_value() if cloud.app_secret else None,
        ingestor=ingestor, receipts=channels.receipts, clock=core.clock,
        default_region=settings.default_region,
        fetch_media=CloudMediaFetcher(channels.graph, media, max_bytes=neonize.media_max_bytes)
        if cloud.access_token else None,
    )
    return Inlets(whatsapp, webhook)

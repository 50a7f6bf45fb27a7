"""Find or start the database and Redis this process should use."""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra.embedded import EmbeddedPostgres, EmbeddedRedis
from bot.settings import Settings


@dataclass
class Backing:
    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop the embedded services this process is responsible for."""
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def backing_services(settings: Settings) -> Backing:
    """Configured URLs win; else the embedded servers under ``data_dir`` (started or reused)."""
    data_dir = settings.data_dir.resolve()
    postgres = redis = None
    database_url = settings.database_url
    if not database_url:
        postgres = EmbeddedPostgres(data_dir / "pgdata")
        database_url = postgres.start()
    redis_url = settings.redis_url
    if not redis_url:
        redis = EmbeddedRedis(data_dir / "redis")
        redis_url = redis.start()
    return Backing(database_url, redis_url, postgres, redis)

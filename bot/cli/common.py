"""What every ``atiende`` command starts with: the settings, and logging configured."""

from __future__ import annotations

from bot.settings import Settings, load_settings


def settings_for_cli() -> Settings:
    """The settings from the environment, with logging set up as they say."""
    from bot.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings

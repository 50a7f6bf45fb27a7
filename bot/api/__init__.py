"""HTTP edge: FastAPI app factory and one router per feature."""

from bot.api.app import create_app

__all__ = ["create_app"]

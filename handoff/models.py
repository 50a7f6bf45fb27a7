"""Handoff tables (users, teams, assignment, SLA, CSAT). Filled in by the handoff issue."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from handoff.records import NAMING


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

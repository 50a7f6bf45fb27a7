"""Contact lists (carteras): CSV import with a report of the rows left out, and listing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.campaigns.csvlist import CsvListError, ParsedList, ParsedRow, parse_contacts_csv
from bot.campaigns.models import ContactList, ContactListEntry
from bot.campaigns.values import ListView
from bot.errors import CampaignRejected, NotFound
from bot.logs import get_logger
from handoff.conversations import Contact
from handoff.tables import Team, TeamMember, User

__all__ = ["ContactLists"]

log = get_logger("atiende.campaigns")


class ContactLists:
    """Contact lists imported from CSV, optionally assigned to an agent or a team."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        default_region: str,
        max_csv_rows: int,
    ) -> None:
        self._sessions = sessions
        self._region = default_region
        self._max_rows = max_csv_rows

    async def import_csv(
        self,
        *,
        name: str,
        data: bytes,
        created_by: uuid.UUID | None,
        assigned_agent_id: uuid.UUID | None = None,
        assigned_team_id: uuid.UUID | None = None,
    ) -> ListView:
        """Store a cartera from CSV bytes; invalid, duplicate and opted-out rows are
        left out and listed with the reason."""
        try:
            parsed = parse_contacts_csv(data, default_region=self._region, max_rows=self._max_rows)
        except CsvListError as exc:
            raise CampaignRejected(f"CSV not usable: {exc}") from exc
        async with self._sessions() as session, session.begin():
            await _check_assignees(session, assigned_agent_id, assigned_team_id)
            opted_out = await _opted_out(session, [r.phone_e164 for r in parsed.rows])
            rejected = _rejections(parsed, opted_out)
            kept = [r for r in parsed.rows if r.phone_e164 not in opted_out]
            cartera = ContactList(
                id=uuid.uuid4(), name=name, source="csv_upload", fields=parsed.fields,
                total_rows=parsed.total_rows, accepted=len(kept), report=rejected,
                assigned_agent_id=assigned_agent_id, assigned_team_id=assigned_team_id,
                created_by=created_by,
            )
            session.add(cartera)
            await session.flush()
            await _add_entries(session, cartera.id, kept)
        log.info(
            "campaigns.list_imported", list_id=str(cartera.id), accepted=len(kept),
            rejected=len(rejected), by=str(created_by),
        )
        return await self.get(cartera.id)

    async def get(self, list_id: uuid.UUID) -> ListView:
        async with self._sessions() as session:
            row = await session.get(ContactList, list_id)
            if row is None:
                raise NotFound(f"contact list {list_id} not found")
            return _list_view(row)

    async def all(self, *, assigned_to: uuid.UUID | None = None) -> list[ListView]:
        """Every cartera, or only those assigned to one agent (directly or via a team)."""
        query = select(ContactList).order_by(ContactList.created_at.desc())
        if assigned_to is not None:
            teams = select(TeamMember.team_id).where(TeamMember.user_id == assigned_to)
            query = query.where(
                (ContactList.assigned_agent_id == assigned_to)
                | ContactList.assigned_team_id.in_(teams)
            )
        async with self._sessions() as session:
            return [_list_view(r) for r in (await session.execute(query)).scalars()]


async def _check_assignees(
    session: AsyncSession, agent_id: uuid.UUID | None, team_id: uuid.UUID | None
) -> None:
    """The list's assignee, if any, exists (and an agent is still active)."""
    if agent_id is not None:
        agent = await session.get(User, agent_id)
        if agent is None or not agent.active:
            raise CampaignRejected(f"no active staff user {agent_id}")
    if team_id is not None and await session.get(Team, team_id) is None:
        raise CampaignRejected(f"no team {team_id}")


async def _opted_out(session: AsyncSession, phones: list[str]) -> set[str | None]:
    """The phones among ``phones`` whose contact asked not to receive messages, or whose
    erased customer had (their opt-out is kept as a salted hash: bot.privacy)."""
    stored = set(
        (
            await session.execute(
                select(Contact.phone_e164).where(
                    Contact.opted_out.is_(True), Contact.phone_e164.in_(phones)
                )
            )
        ).scalars()
    )
    erased = (await session.execute(text(
        "SELECT p FROM unnest(CAST(:phones AS text[])) p WHERE EXISTS (SELECT 1 FROM "
        "privacy_optouts o WHERE o.phone_hash = privacy_phone_hash(p))"),
        {"phones": phones})).scalars()
    return stored | set(erased)


def _rejections(parsed: ParsedList, opted_out: set[str | None]) -> list[dict[str, Any]]:
    """The import report: rows the CSV parser refused plus opted-out rows, in file order."""
    rejected = [r.to_json() for r in parsed.rejected] + [
        {"row": r.row_number, "reason": "opted_out", "phone": r.phone_e164,
         "detail": "the customer asked not to receive messages"}
        for r in parsed.rows if r.phone_e164 in opted_out
    ]
    rejected.sort(key=lambda r: int(str(r["row"])))
    return rejected


async def _add_entries(
    session: AsyncSession, list_id: uuid.UUID, kept: Sequence[ParsedRow]
) -> None:
    if kept:
        await session.execute(
            insert(ContactListEntry),
            [
                {"id": uuid.uuid4(), "list_id": list_id, "row_number": r.row_number,
                 "phone_e164": r.phone_e164, "name": r.name, "fields": r.fields}
                for r in kept
            ],
        )


def _list_view(row: ContactList) -> ListView:
    return ListView(
        id=row.id, name=row.name, fields=list(row.fields), total_rows=row.total_rows,
        accepted=row.accepted, rejected=list(row.report),
        assigned_agent_id=row.assigned_agent_id, assigned_team_id=row.assigned_team_id,
        created_at=row.created_at,
    )

"""The app shell's pages: home by role, the inbox, the live dashboard, the admin pages for
users, teams, canned replies and business hours, and everyone's own account."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.auth import OptionalUser, PageAdmin, PageSupervisor, PageUser
from bot.api.pages import home_of, render

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def home(user: OptionalUser) -> Response:
    """The signed-in role's home page (the sign-in page for everyone else)."""
    return RedirectResponse(home_of(user.role) if user else "/login", status_code=303)


@pages.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, user: PageUser) -> HTMLResponse:
    return _inbox(request, user, None)


@pages.get("/inbox/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request, conversation_id: uuid.UUID, user: PageUser
) -> HTMLResponse:
    return _inbox(request, user, conversation_id)


def _inbox(request: Request, user: PageUser, conversation_id: uuid.UUID | None) -> HTMLResponse:
    return render(
        request, "inbox.html", user=user, areas=("inbox", "sequences"), title="nav.inbox",
        script="inbox",
        context={"conversation_id": str(conversation_id) if conversation_id else ""},
    )


@pages.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request, user: PageSupervisor) -> HTMLResponse:
    return render(request, "dashboard.html", user=user, areas=("dashboard", "inbox"),
                  title="nav.dashboard", script="dashboard")


@pages.get("/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, user: PageAdmin) -> HTMLResponse:
    return render(request, "users.html", user=user, areas=("admin",), title="nav.users",
                  script="users")


@pages.get("/admin/teams", response_class=HTMLResponse)
async def teams_page(request: Request, user: PageSupervisor) -> HTMLResponse:
    return render(request, "teams.html", user=user, areas=("admin",), title="nav.team",
                  script="teams")


@pages.get("/admin/canned", response_class=HTMLResponse)
async def canned_page(request: Request, user: PageSupervisor) -> HTMLResponse:
    return render(request, "canned.html", user=user, areas=("admin",), title="nav.canned",
                  script="canned")


@pages.get("/admin/hours", response_class=HTMLResponse)
async def hours_page(request: Request, user: PageAdmin) -> HTMLResponse:
    return render(request, "hours.html", user=user, areas=("admin",), title="nav.hours",
                  script="hours")


@pages.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "account.html", user=user, areas=("admin",), title="nav.account",
                  script="account")

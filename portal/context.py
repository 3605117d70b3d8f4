"""What every request needs: settings, the clock, the database, pages."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from examflow.db import engine_for
from examflow.settings import Settings
from models.domain import SHANGHAI, in_shanghai


def parse_moment(value: str) -> datetime:
    """An ISO date or date-time; without an offset it is Asia/Shanghai (as the CLI's --as-of)."""
    return in_shanghai(datetime.fromisoformat(value.strip()))


def shanghai_text(moment: datetime | None) -> str:
    return "" if moment is None else in_shanghai(moment).strftime("%Y-%m-%d %H:%M")


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("portal", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["when"] = shanghai_text
    return env


class Portal:
    """The app's shared state (one per app): read once from ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = make_environment()
        self.database_url = settings.resolved_database_url()
        self.secure_cookies = settings.public_url.lower().startswith("https://")
        self.fixed_now = parse_moment(settings.portal_as_of) if settings.portal_as_of else None

    def now(self) -> datetime:
        """The moment a request acts at: the rehearsal's fixed clock, else now."""
        return self.fixed_now or datetime.now(SHANGHAI)

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with Session(engine_for(self.database_url), expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "user", None))
        context.setdefault("csrf", getattr(request.state, "csrf", ""))
        return HTMLResponse(self.render(template, request=request, **context), status_code)

    def render(self, template: str, **context: Any) -> str:
        """A template's HTML (``page`` adds the request, the signed-in user and the token)."""
        return self.env.get_template(template).render(**context)


def portal_of(request: Request) -> Portal:
    portal = request.app.state.portal
    assert isinstance(portal, Portal)
    return portal

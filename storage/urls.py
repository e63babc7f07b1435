"""Database URLs: users give SQLAlchemy URLs; psycopg wants libpq ones; logs want no password."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://u:p@h/db`` -> ``postgresql://u:p@h/db`` for psycopg.connect."""
    url = make_url(sqlalchemy_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(sqlalchemy_url: str) -> str:
    """The URL with its password masked, safe to log or print."""
    return make_url(sqlalchemy_url).render_as_string(hide_password=True)

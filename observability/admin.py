"""The admin bearer token that every state-changing endpoint requires.

``SENTIMENT_ADMIN_TOKEN`` unset: the API is read-only and state changes answer 403. Set: a
request must carry ``Authorization: Bearer <token>``, else 401. The OpenAPI document states it
(the ``HTTPBearer`` security scheme on each guarded operation, and the 401 and 403 answers).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr


class ErrorResponse(BaseModel):
    detail: str


_bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (SENTIMENT_ADMIN_TOKEN); required to change state.",
)

# What each guarded operation adds to its documented answers.
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No bearer token, or not the admin token"},
    403: {"model": ErrorResponse, "description": "The server has no admin token: read-only"},
}


def admin_guard(token: SecretStr | None) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with the admin token."""
    expected = token.get_secret_value().encode() if token is not None else None

    def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if expected is None:
            raise HTTPException(
                403, "state changes are disabled: the server has no SENTIMENT_ADMIN_TOKEN"
            )
        if credentials is None:
            raise HTTPException(
                401, "send Authorization: Bearer <admin token>", {"WWW-Authenticate": "Bearer"}
            )
        if not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "not the admin token", {"WWW-Authenticate": "Bearer"})

    return require_admin

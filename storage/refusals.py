"""Which failures to connect to PostgreSQL are lasting: the server answered and said no.

libpq reports connection failures without an SQLSTATE, so they are told apart by the server's
message. Anything not recognised here counts as passing (refused, timed out, starting up, too
many clients...): at start-up it is waited out, and a real misconfiguration still ends with a
clear error at the deadline.
"""

from __future__ import annotations

_LASTING = (
    "authentication failed",  # password, ident, PAM, certificate...
    "no password supplied",
    "does not exist",  # role or database
    "no pg_hba.conf entry",
    "permission denied",
)


def refused_for_good(error: BaseException) -> bool:
    """True when waiting cannot help: a wrong password, an unknown role or database, access
    denied by pg_hba.conf."""
    text = str(error)
    return any(marker in text for marker in _LASTING)

"""Signed access tokens (JWT) with a role and a scope, checked on every route.

Roles: `operator` (everything), `zone` (police staff of one zone), `coordinator`
(one BIN), `member` (themselves) and `study` (a study service reading aggregates and
the directory).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from fastapi import Request

from shared.http import Problem

Role = Literal["operator", "zone", "coordinator", "member", "study"]
ROLES: tuple[str, ...] = ("operator", "zone", "coordinator", "member", "study")
ISSUER = "bin-platform"
AUDIENCE = "bin-platform"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who calls: a role and the zone code, BIN id or member id it is scoped to."""

    role: str
    scope: str
    subject: str

    @property
    def ref(self) -> str:
        """An identifier for the audit trail: role and subject, no personal data."""
        return f"{self.role}:{self.subject}"


def issue_token(
    *,
    secret: str,
    role: str,
    scope: str = "",
    subject: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """A signed token for a role and scope."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role in ("zone", "coordinator", "member") and not scope:
        raise ValueError(f"a {role} token needs a scope")
    issued = now or datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject or f"{role}-{scope or 'all'}",
        "role": role,
        "scope": scope,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, *, secret: str) -> Principal:
    """The principal of a valid token; Problem 401 for an invalid or expired one."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The token is not valid.") from None
    role = claims.get("role")
    if role not in ROLES:
        raise _unauthorized("The token has no known role.")
    return Principal(role=role, scope=str(claims.get("scope", "")), subject=claims["sub"])


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def principal_from(request: Request, *, secret: str) -> Principal:
    """The caller of a request, from its `Authorization: Bearer` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("An `Authorization: Bearer <token>` header is required.")
    return read_token(token.strip(), secret=secret)


def forbid(detail: str) -> Problem:
    """The 403 for a caller whose role or scope does not reach the resource."""
    return Problem(403, "Forbidden", detail)


def require_role(principal: Principal, *roles: str) -> None:
    """Raise 403 unless the caller has one of the roles."""
    if principal.role not in roles:
        raise forbid(f"This needs one of the roles: {', '.join(roles)}.")


def require_zone(principal: Principal, zone: str) -> None:
    """Raise 403 unless the caller is an operator or staff of that zone."""
    if principal.role == "operator":
        return
    if principal.role == "zone" and principal.scope == zone:
        return
    raise forbid("Your token does not reach this zone.")

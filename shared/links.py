"""Signed one-step links sent inside messages: unsubscribing from e-mail.

Messaging puts a link in every mail it sends; the registry acts on it. The token is a
JWT signed with the platform's key for an audience of its own, so that it can never
pass as an access token, and it names the member by id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

UNSUBSCRIBE_AUDIENCE = "bin-unsubscribe"
ALGORITHM = "HS256"
# A link in an old mail must still work: the GDPR wants withdrawing as easy as giving.
UNSUBSCRIBE_TTL = timedelta(days=400)


@dataclass(frozen=True)
class Unsubscribe:
    """What an unsubscribe link stands for: one member, one channel, one message."""

    member_id: str
    channel: str
    message_id: str


class InvalidLink(ValueError):
    """A link whose token is forged, expired or malformed."""


def unsubscribe_token(
    *, secret: str, member_id: str, message_id: str, channel: str = "email",
    now: datetime | None = None,
) -> str:
    """The token of a member's unsubscribe link for one message."""
    issued = now or datetime.now(UTC)
    claims = {
        "aud": UNSUBSCRIBE_AUDIENCE,
        "sub": member_id,
        "chn": channel,
        "msg": message_id,
        "iat": issued,
        "exp": issued + UNSUBSCRIBE_TTL,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_unsubscribe(token: str, *, secret: str) -> Unsubscribe:
    """What a valid token stands for; InvalidLink for any other."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=UNSUBSCRIBE_AUDIENCE,
            options={"require": ["sub", "exp", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidLink("The link is not valid or has expired.") from error
    return Unsubscribe(
        member_id=str(claims["sub"]), channel=str(claims.get("chn", "email")),
        message_id=str(claims.get("msg", "")),
    )

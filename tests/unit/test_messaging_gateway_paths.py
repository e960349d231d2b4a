"""The local SMTP server's fast reading of MAIL FROM / RCPT TO paths agrees with
aiosmtpd's own parser, on plain paths and on every other form it hands back to it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP

from services.messaging.gateway import SmtpServer

PATHS = [
    "<m1@example.org>",
    "<m1@example.org> SIZE=1234",
    "<first.last+tag@sub.example.be>",
    "<a@b> BODY=8BITMIME SMTPUTF8",
    "<A!#$%&'*+/=?^_`{|}~-z@b-c.d>",
    "<a..b@x.org>",
    "<.a@x.org>",
    '<"quoted local"@example.org>',
    "<@route:a@b.org>",
    "m1@example.org",
    "<>",
    "",
    "<ö@example.org>",
    "<a@b.org",
    " <a@b.org>",
    "<not an address>",
]


class _Handler:
    """No hooks: the parsing of paths needs none."""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop for the sessions, closed after the test (aiosmtpd makes one if not)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("path", PATHS)
def test_a_path_reads_as_aiosmtpd_reads_it(
    path: str, loop: asyncio.AbstractEventLoop
) -> None:
    server, library = SmtpServer(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
    assert server._getaddr(path) == library._getaddr(path)


def test_a_local_part_over_the_limit_is_refused_as_aiosmtpd_refuses_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    path = f"<{'x' * 65}@example.org>"
    server, library = SmtpServer(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
    server.local_part_limit = library.local_part_limit = 64
    assert server._getaddr(path) == library._getaddr(path) == (None, None)

"""The status board counts the fan-out's pending records and the senders' reports,
whichever it reads first."""

from __future__ import annotations

from services.messaging.consumers import StatusBoards
from shared.envelope import decode, encode
from shared.events import Event
from tests.builders import analytics as b


def _received(event: Event):  # type: ignore[no-untyped-def]
    body, headers = encode(event, source="test")
    return decode(key=b"a1", value=body, headers=headers)


def test_pending_records_and_reports_meet_on_one_board() -> None:
    boards = StatusBoards(db=None)
    boards.apply(_received(b.delivery_status("a1", member_id="m1", channel="sms")))
    boards.apply(
        _received(b.deliveries_pending("a1", members={"sms": ["m1", "m2"], "email": ["m2"]}))
    )
    summary = boards.boards["a1"].summary()
    assert summary["targeted_members"] == 2
    assert summary["by_channel"]["sms"]["handed_over"] == 1
    assert summary["by_channel"]["sms"]["pending"] == 1
    assert summary["by_channel"]["email"]["pending"] == 1
    assert boards.dirty == {"a1"}

"""Every error is problem+json; an unreachable database or broker is a 503, not a 500."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError
import httpx
from pymongo.errors import ServerSelectionTimeoutError

from shared.http import create_app


async def answer_to(error: Exception) -> httpx.Response:
    """What an app whose route raises `error` answers."""
    app = create_app(title="test", description="", checks=[])

    @app.get("/boom")
    async def boom() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


async def test_a_database_outage_answers_503_with_retry_after() -> None:
    answer = await answer_to(ServerSelectionTimeoutError("no server"))
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    assert "no server" not in answer.text


async def test_a_broker_outage_answers_503() -> None:
    answer = await answer_to(KafkaConnectionError("down"))
    assert answer.status_code == 503


async def test_anything_else_is_a_500_problem() -> None:
    answer = await answer_to(RuntimeError("bug"))
    assert answer.status_code == 500
    assert answer.json()["title"] == "Internal error"

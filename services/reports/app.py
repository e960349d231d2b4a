"""HTTP API of the reports service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.reports.settings import get_settings
from shared.http import create_app
from shared.runtime import Runtime

settings = get_settings()
runtime = Runtime(settings)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Opens the database client for the app's lifetime."""
    await runtime.start()
    yield
    await runtime.stop()


app = create_app(
    title="BIN reports",
    description="The anonymous tip line for suspected drug production.",
    checks=[runtime.kafka_problem, runtime.database_problem],
    lifespan=lifespan,
)

"""The HTTP side every service shares: problem+json errors, health, readiness, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.outbox import LeaseBusy

log = logging.getLogger("bin.http")

PROBLEM_JSON = "application/problem+json"

HTTP_SECONDS = Histogram(
    "bin_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status class.",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_ERRORS = Counter(
    "bin_http_server_errors_total",
    "HTTP answers with status 500 or above: each is a bug or an outage.",
    ["route"],
)

ReadinessCheck = Callable[[], Awaitable[str]]


class Problem(Exception):
    """An error answered as RFC 9457 problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json answer."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    """Name each invalid field and why, without echoing the value sent."""
    found = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        found.append({"field": ".".join(location) or "body", "reason": item["msg"]})
    return found


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json; a 500 is logged as the bug it is."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, error: Problem) -> JSONResponse:
        return problem_response(
            error.status, error.title, error.detail, errors=error.errors,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "Invalid request", "Some fields are invalid.", errors=field_errors(error)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(error.status_code, str(error.detail))

    # The database or the broker not answering is an outage, not a bug: the client is
    # told to come back, and nothing of the request is logged but its route.
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning(
            "RETRY dependency unavailable while answering a request",
            extra={"path": request.url.path, "reason": type(error).__name__},
        )
        return problem_response(
            503, "Service unavailable",
            "The database or the message broker did not answer; try again shortly.",
            headers={"Retry-After": "5"},
        )

    for outage in (ConnectionFailure, ExecutionTimeout, KafkaConnectionError,
                   KafkaTimeoutError, LeaseBusy):
        app.add_exception_handler(outage, _unavailable)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "unhandled error answering a request",
            exc_info=error,
            extra={"path": request.url.path, "method": request.method},
        )
        return problem_response(500, "Internal error", "This is a bug; it was logged.")


def install_operational_routes(app: FastAPI, *, checks: list[ReadinessCheck]) -> None:
    """Add /healthz (alive), /readyz (dependencies reachable) and /metrics."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Answers while the process is alive."""
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Answers 200 when Kafka and the database are reachable, 503 with why not."""
        reasons = [reason for check in checks if (reason := await check())]
        if reasons:
            return problem_response(503, "Not ready", "; ".join(reasons))
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[..., Any]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        HTTP_SECONDS.labels(
            request.method, template, f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        if response.status_code >= 500 and template != "/readyz":
            HTTP_ERRORS.labels(template).inc()
        return response


def create_app(
    *,
    title: str,
    description: str,
    checks: list[ReadinessCheck],
    lifespan: Any = None,
) -> FastAPI:
    """A FastAPI app with the platform's error handling, probes and tracing."""
    app = FastAPI(title=title, description=description, lifespan=lifespan, version="1")
    install_error_handlers(app)
    install_operational_routes(app, checks=checks)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    return app


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the app with uvicorn; its access log stays off (it would log addresses)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)

# syntax=docker/dockerfile:1.7
# One image for every role: `python -m services.<service> <role>` is chosen by the
# Deployment's args (see deploy/k8s). Build from the repository root with the
# reference data as a named context, since it is not part of the repository:
#   docker build --build-context reference=../shared/data -t bin-platform .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.9.5
WORKDIR /app
COPY pyproject.toml uv.lock ./
# Dependencies only: the project itself is not a package ([tool.uv] package = false).
RUN uv sync --frozen --no-dev --no-install-project

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REFERENCE_DIR=/app/reference \
    FAUST_DATADIR=/var/lib/bin/faust
RUN groupadd --system --gid 10001 bin \
    && useradd --system --uid 10001 --gid bin --no-create-home --shell /usr/sbin/nologin bin \
    && install -d -o bin -g bin /var/lib/bin/faust
WORKDIR /app
COPY --from=builder /app/.venv /app/.venv
COPY shared/ /app/shared/
COPY services/ /app/services/
COPY --from=reference . /app/reference/
USER 10001:10001
EXPOSE 8001 8002 8003 8004 9100
ENTRYPOINT ["python", "-m"]
CMD ["services.registry", "api"]

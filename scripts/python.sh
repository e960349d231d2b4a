#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv from uv.lock,
# with uv itself installed once into .cache/uv-venv.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

UV_VERSION=0.13.8
UV="$CACHE/uv-venv/bin/uv"
export UV_CACHE_DIR="$CACHE/uv" UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$ROOT/.venv"

PY=$(command -v python3.11 || command -v python3 || true)
[ -n "$PY" ] || die "Python 3.11 is missing: install python3.11 (Debian: apt-get install python3.11 python3.11-venv)"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is needed, found $("$PY" --version): install python3.11"

if [ ! -x "$UV" ]; then
  say "installing uv $UV_VERSION (once)"
  "$PY" -m venv "$CACHE/uv-venv" || die "python3 -m venv failed: install python3.11-venv"
  "$CACHE/uv-venv/bin/pip" -q install "uv==$UV_VERSION" || die "could not install uv from PyPI"
fi
stamp="$ROOT/.venv/.synced"
if [ ! -f "$stamp" ] || [ "$ROOT/uv.lock" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  say "syncing the virtual environment from uv.lock"
  (cd "$ROOT" && "$UV" sync --frozen --python "$PY" --quiet) || die "uv sync failed"
  touch "$stamp"
fi

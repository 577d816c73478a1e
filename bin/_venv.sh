# Sourced by bin/run and bin/test: create .venv and install the pinned requirements when they
# changed since the last install (a stamp file holds their hash). Pass "dev" for test tools.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MEDAI_PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "==> creating virtualenv .venv with $PY"
  "$PY" -m venv "$ROOT/.venv"
fi
REQS=("$ROOT/requirements.txt")
if [ "${1:-}" = "dev" ]; then REQS+=("$ROOT/requirements-dev.txt"); fi
NODEPS="$ROOT/requirements-nodeps.txt"
STAMP="$ROOT/.venv/.medai-requirements-$(cat "${REQS[@]}" "$NODEPS" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "==> installing pinned requirements"
  # --no-compile: Python compiles the modules it imports on first use, not every file of
  # every wheel here (torch alone has thousands), which is most of an install's CPU time.
  PIP_ARGS=(--disable-pip-version-check -q --no-compile)
  # torch's CPU wheel lies on this machine kind's disk; pip elsewhere uses the index.
  if [ -d /opt/wheels ]; then PIP_ARGS+=(--find-links /opt/wheels); fi
  ARGS=()
  for r in "${REQS[@]}"; do ARGS+=(-r "$r"); done
  "$ROOT/.venv/bin/python" -m pip install "${PIP_ARGS[@]}" "${ARGS[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$ROOT/.venv/bin/python" -m pip install "${PIP_ARGS[@]}" --no-deps -r "$NODEPS" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$ROOT/.venv/bin/python" -c "import django, celery, torch" \
    || { echo "requirements failed to install" >&2; exit 1; }
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"

#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite (the browser test included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest -q tests "$@"

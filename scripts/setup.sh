#!/usr/bin/env bash
# Creates .venv and installs what the app (default) or the tests (`dev`) need, and this package in editable
# mode (`import stylize` and the `stylize` command from any directory). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$(sha256sum requirements.txt "$requirements" pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$requirements"
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
if [ "${1:-}" = "dev" ] && [ ! -x /usr/bin/chromium ]; then
  # the browser test drives Debian's Chromium (playwright cannot download its own here)
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

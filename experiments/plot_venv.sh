#!/usr/bin/env bash
# Prints the python of experiments/.venv-plot (matplotlib, pinned in requirements-plot.txt),
# creating the venv on first use. Used by the studies' table-and-figure steps.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=experiments/.venv-plot
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install --quiet -r experiments/requirements-plot.txt >&2
fi
echo "$VENV/bin/python"

#!/usr/bin/env bash
# Creates .venv with the pinned Python packages tensorlift's scripts use (NumPy for the
# committed test data; the peer benchmarks add theirs here). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check "numpy==2.4.6"
echo ".venv ready: $(.venv/bin/python -c 'import numpy; print("numpy", numpy.__version__)')"

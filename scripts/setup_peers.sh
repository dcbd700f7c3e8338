#!/usr/bin/env bash
# Creates .venv-peers with the pinned peers the benchmark harness compares against
# (`cargo bench --bench compare -- --peers`): NumPy, PyTensor (C and NUMBA backends) and
# JAX, from PyPI. Idempotent; needs python3 (3.11 was used) and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-peers/bin/python ]; then
  python3 -m venv .venv-peers
fi
.venv-peers/bin/pip install --quiet --disable-pip-version-check \
  "numpy==2.4.6" "pytensor==3.0.7" "numba==0.65.1" "jax==0.10.2" "jaxlib==0.10.2"
.venv-peers/bin/python - <<'PY'
import numpy, pytensor, numba, jax
print("peers ready:", "numpy", numpy.__version__, "pytensor", pytensor.__version__,
      "numba", numba.__version__, "jax", jax.__version__)
PY

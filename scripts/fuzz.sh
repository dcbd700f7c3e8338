#!/usr/bin/env bash
# Differential testing at scale (issue 16): every property test (random graphs, random
# reductions, scans and arg-reductions in every layout, random Scan ops (native drivers
# with choices and nested scans), random advanced indices, random kernels, random
# expressions, rewrites keeping values) with N cases each, JIT against
# the reference, in a release build; then the soak of 20,000 compile/call/drop cycles.
#   scripts/fuzz.sh N [SEED]     (SEED: a u64, decimal or 0x-hex; default: CI's seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${1:-100000}"
if [ -n "${2:-}" ]; then
    export TL_PROPTEST_SEED="$2"
fi
cargo test --release --no-fail-fast --test backends --test kernels --test rewrite_pipeline \
    --test vmath_accuracy --test properties --test scan -- \
    random_ rewrites_keep_values the_safe_kernel_api basic_slices
TL_SOAK_CYCLES=20000 cargo test --release --test soak --test reliability --test allocation_limit

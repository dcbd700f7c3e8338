//! Shared by the integration tests: the configuration of every property test. CI runs the
//! default case count from a fixed seed; `PROPTEST_CASES=N` and `TL_PROPTEST_SEED=S` (a
//! u64, decimal or 0x-hex) scale a run up or move it to other cases (`scripts/fuzz.sh`).

use proptest::test_runner::{Config, RngSeed};

/// `default_cases` cases from `default_seed`, unless the environment says otherwise.
pub fn proptest_config(default_cases: u32, default_seed: u64) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    let seed = std::env::var("TL_PROPTEST_SEED")
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default_seed);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // Hundreds of thousands of cases are a fuzzing run: no time-wasting shrink limit.
        ..Config::default()
    }
}

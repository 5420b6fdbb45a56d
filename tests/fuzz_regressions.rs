//! Replays every input kept in fuzz/regressions/TARGET/ (inputs that made a fuzz target panic
//! before the bug was fixed, and hand-picked nasty ones) through the very code the fuzz targets
//! run, fuzz/src/lib.rs, in a debug build: overflow checks on, as under the fuzzer.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    let panicked: Vec<_> = inputs
        .iter()
        .filter(|p| {
            let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .collect();
    assert!(panicked.is_empty(), "{target} panicked on {panicked:?}");
}

#[test]
fn config_inputs_do_not_panic() {
    replay("config", harness::config);
}

#[test]
fn cli_inputs_do_not_panic() {
    replay("cli", harness::cli);
}

#!/usr/bin/env bash
# Fuzz husk with cargo-fuzz (libFuzzer), each target for a bounded time, one after the other:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGET is `config` (config.json bytes through parsing and
# validation) or `cli` (NUL-separated argv through the command-line parsing), default both.
# Exits non-zero if a target crashed (a panic), hung (an input taking over 10 s) or did not build.
#
# Needs cargo-fuzz (scripts/install-deps.sh installs it) and only the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable rustc take cargo-fuzz's unstable flags. No sanitizer by default:
# the code under test is safe Rust (and libseccomp, which ASan would not instrument), and without
# ASan it runs 4-6 times as many inputs per second; debug assertions and overflow checks stay on. FUZZ_SANITIZER=address
# brings it back.
#
# Inputs: fuzz/seeds/TARGET/ (committed: configs of runc, crun and husk `spec`, Docker- and
# CRI-like configs, and the configs and command lines of a spec-tests run), fuzz/regressions/TARGET/
# and fuzz/corpus/TARGET/ (what the fuzzer found since, kept between runs, not committed), with
# the dictionary fuzz/TARGET.dict. A crashing input is saved as
# fuzz/artifacts/TARGET/crash-* (timeout-* for a hang) and printed in base64, so a CI log keeps
# it; once the bug is fixed, move it to fuzz/regressions/TARGET/, whose files
# tests/fuzz_regressions.rs replays. The build goes to $CARGO_TARGET_DIR/fuzz (default
# target/fuzz), apart from husk's own build, whose flags differ.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

SECONDS_PER_TARGET=${1:-60}
[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] || {
    echo "fuzz.sh: SECONDS must be a positive number, not '$SECONDS_PER_TARGET'" >&2
    exit 2
}
shift $(($# ? 1 : 0))
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(config cli)
SANITIZER=${FUZZ_SANITIZER:-none}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/fuzz
export RUSTC_BOOTSTRAP=1

cargo fuzz --version >/dev/null 2>&1 || {
    echo "fuzz.sh: cargo-fuzz is missing; run scripts/install-deps.sh" >&2
    exit 1
}

# One build for all targets; `cargo fuzz run` below then finds it up to date.
cargo fuzz build -s "$SANITIZER" --target-dir "$TARGET_DIR"

failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    marker=$(mktemp)
    dict=()
    [[ -f fuzz/$t.dict ]] && dict=("-dict=fuzz/$t.dict")
    printf '\n--- fuzz target %s: %ss\n' "$t" "$SECONDS_PER_TARGET"
    # libFuzzer's line per new input and its recommended dictionary would flood a CI log.
    set +e
    cargo fuzz run -s "$SANITIZER" --target-dir "$TARGET_DIR" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 "${dict[@]}" 2>&1 |
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)|^[[:space:]]+NEW_FUNC|# Uses: [0-9]+$'
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc != 0)); then
        failed+=("$t")
        echo "fuzz.sh: target $t failed (exit $rc)" >&2
        find "fuzz/artifacts/$t" -type f -newer "$marker" | while read -r f; do
            echo "fuzz.sh: input saved as $f; base64:" >&2
            head -c 65536 "$f" | base64 -w0 >&2
            echo >&2
        done
    fi
    rm -f "$marker"
done

if ((${#failed[@]})); then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${TARGETS[*]} (${SECONDS_PER_TARGET}s each)"

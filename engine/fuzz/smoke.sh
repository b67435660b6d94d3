#!/usr/bin/env bash
# Fuzz smoke test for CI: builds the cargo-fuzz targets of engine/fuzz and runs each
# one briefly from its committed seeds. Exits 1 if any target crashes, hangs (an input
# running longer than FUZZ_TIMEOUT seconds) or runs out of memory, 2 if they do not build.
#
#   bash engine/fuzz/smoke.sh                 # from the repo root (or from anywhere)
#   FUZZ_SECONDS=300 bash engine/fuzz/smoke.sh
#   FUZZ_TARGETS=engine_text bash engine/fuzz/smoke.sh
#
# Only a stable toolchain is available; cargo-fuzz passes nightly-only rustc flags
# (-Zsanitizer=address, ...), so RUSTC_BOOTSTRAP=1 lets stable accept them. See README.md.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${FUZZ_SECONDS:-20}"
timeout_s="${FUZZ_TIMEOUT:-10}"
targets="${FUZZ_TARGETS:-flow_loader engine_text}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: cargo-fuzz not found, installing it"
    cargo install cargo-fuzz --locked
fi

# libFuzzer adds every new interesting input to its first corpus directory: give it a
# throwaway copy so the committed seeds are never modified.
work="$(mktemp -d "${TMPDIR:-/tmp}/alfred-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$fuzz_dir"
# Build every target first, so a compile error is reported as such and not as a crash.
echo "smoke: building the fuzz targets"
build_start=$SECONDS
if ! cargo fuzz build --fuzz-dir "$fuzz_dir"; then
    echo "smoke: the fuzz targets do not build" >&2
    exit 2
fi
echo "smoke: built in $((SECONDS - build_start))s"

failed=()
for target in $targets; do
    mkdir -p "$work/$target"
    cp -R "seeds/$target/." "$work/$target/"
    echo "smoke: fuzzing $target for ${seconds}s"
    start=$SECONDS
    if cargo fuzz run --fuzz-dir "$fuzz_dir" "$target" "$work/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout="$timeout_s" -print_final_stats=1; then
        echo "smoke: $target ok ($((SECONDS - start))s)"
    else
        echo "smoke: $target FAILED (crash, hang or OOM); the reproducer is in $fuzz_dir/artifacts/$target/" >&2
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "smoke: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "smoke: all fuzz targets ran ${seconds}s without a crash"

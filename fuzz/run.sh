#!/usr/bin/env bash
# Runs the fuzz targets one after the other, each for SECONDS (default 600).
#
#   fuzz/run.sh                 # every target, 600 s each
#   fuzz/run.sh 3600            # every target, an hour each
#   fuzz/run.sh 600 client      # only these targets
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Corpora grow in fuzz/corpus/TARGET (git-ignored) and are reused by the
# next run; crashes land in fuzz/artifacts/TARGET. The seeds in
# fuzz/seeds/TARGET are written first (from fuzz/harness/src/seeds.rs) and
# read as a second corpus; fuzz/regressions/TARGET (committed) as a third.
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2" fuzz/run.sh.
# Each target's log is fuzz/logs/TARGET.log (git-ignored); the last line
# of each (executions, coverage) is printed at the end.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(decode client robust window async_client outbox async_outbox outbox_file outbox_record tls)
fi

cargo run --quiet --manifest-path harness/Cargo.toml --example seeds
mkdir -p logs
failed=()

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target: ${seconds}s"
    # -timeout: a single input running 10 s of real time is a hang (the
    # clients run on virtual time, so a normal input takes microseconds).
    set +e
    # shellcheck disable=SC2086
    mkdir -p "regressions/$target"
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 ${FUZZ_FLAGS:-} 2>&1 | tee "logs/$target.log" \
        | grep --line-buffered -E '^#[0-9]+.*(INITED|DONE|pulse)|panicked|ERROR|^Done'
    statuses=("${PIPESTATUS[@]}")
    set -e
    if [ "${statuses[0]}" -ne 0 ]; then
        echo "== $target FAILED (exit ${statuses[0]}): see fuzz/logs/$target.log and fuzz/artifacts/$target"
        failed+=("$target")
    fi
done

echo "== summary"
for target in "${targets[@]}"; do
    last=$(grep -E '^#[0-9]+' "logs/$target.log" | tail -n 1 || true)
    execs=$(grep -E 'stat::number_of_executed_units' "logs/$target.log" | awk '{print $2}' || true)
    echo "$target: ${execs:-?} executions; $last"
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "== failed: ${failed[*]}"
    exit 1
fi

#!/bin/bash
# Runs libFuzzer targets for a fixed time each and prints one line per target:
#   "ok   fuzz_http (123456 runs, cov: 812 ft: 2301)"   or   "FAIL fuzz_http (...)"
# Usage: test/fuzz/run.sh SECONDS [fuzz_NAME...]   (default: one per test/fuzz/fuzz_*.c)
# Called by `make fuzz` / `make fuzz-smoke` and by scripts/test.sh; the binaries must exist.
#
# Each target fuzzes a scratch corpus, build/fuzz/corpus-NAME/, seeded from the committed
# test/fuzz/corpus/NAME/ and test/fuzz/regressions/NAME/: what a run discovers stays under
# build/ (and is reused by the next run), the repository is never written to. A crash or a
# failed invariant leaves its input in build/fuzz/ (crash-*, timeout-*, oom-*, leak-*) and
# the whole log in build/fuzz/NAME.log. Exit status: 0 only if every target ran clean.
set -u
cd "$(dirname "$0")/../.." || exit 1

FUZZ=build/fuzz
seconds=${1:?usage: $0 SECONDS [fuzz_NAME...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in test/fuzz/fuzz_*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi

# The HTTP head limit is 8 KiB: let inputs grow past it so the 431 path is reachable.
max_len() {
    case $1 in
    http) echo 10240 ;;
    *) echo 8192 ;;
    esac
}

failed=0
for target in "${targets[@]}"; do
    name=${target#fuzz_}
    if [ ! -x "$FUZZ/$target" ]; then
        echo "FAIL $target (not built: make fuzz-build)"
        failed=$((failed + 1))
        continue
    fi
    corpus=$FUZZ/corpus-$name
    log=$FUZZ/$target.log
    mkdir -p "$corpus"
    for seeds in test/fuzz/corpus/"$name" test/fuzz/regressions/"$name"; do
        if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ]; then
            cp -p "$seeds"/* "$corpus"/
        fi
    done
    dict=()
    if [ -f "test/fuzz/$name.dict" ]; then
        dict=("-dict=test/fuzz/$name.dict")
    fi
    "$FUZZ/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$(max_len "$name")" -artifact_prefix="$FUZZ/" -print_final_stats=0 \
        "${dict[@]}" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*$/\1/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        echo "ok   $target ($runs runs in ${seconds}s, ${cov:-no coverage printed})"
    else
        failed=$((failed + 1))
        tail -n 60 "$log"
        echo "FAIL $target (exit $rc; log: $log; crashing input: see 'Test unit written to' above)"
    fi
done
[ "$failed" -eq 0 ]

#!/bin/bash
# Runs every suite against both builds (optimised and ASan+UBSan) and ends with one line:
# "N passed, N failed", counting individual test cases. Exit status 0 only if none failed.
# Called by `make test` after the builds; run it alone to re-run without rebuilding.
set -u
cd "$(dirname "$0")/.."

PY=/usr/bin/python3 # Debian's interpreter: it has python3-pytest and python3-websockets
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0
SECONDS=0 # bash counts the seconds since; each stage's header says when it began

stage() { echo "== $* (at ${SECONDS} s)"; }

# A cmocka binary prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
# A binary that dies before its summary (a sanitizer report, a crash) counts as one failure.
run_unit() {
    local bin=$1 out rc p f
    out=$("$bin" 2>&1)
    rc=$?
    p=$(sed -n 's/^.*\[  PASSED  \] \([0-9]*\) test.*$/\1/p' <<<"$out" | tail -n 1)
    f=$(sed -n 's/^.*\[  FAILED  \] \([0-9]*\) test.*$/\1/p' <<<"$out" | tail -n 1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        printf '%s\n' "$out"
        echo "FAIL $bin ($p passed, $f failed, exit $rc)"
    else
        echo "ok   $bin ($p passed)"
    fi
}

# Static checks, one test each: formatting (clang-format), every header compiling alone, the
# linters (clang-tidy, cppcheck) and the man page (mandoc -Tlint). A failure prints the
# tool's complaint. They run on one core while the unit tests and the fuzz smoke run on the
# other (each side is one process at a time), and are counted once both are done.
mkdir -p build/test-logs
static_log=build/test-logs/static-checks.log
stage "static checks (in the background), then unit tests and the fuzz smoke"
(
    for check in fmt-check headers lint man-lint; do
        if out=$(make --no-print-directory -s "$check" 2>&1); then
            echo "ok   make $check"
        else
            printf '%s\n' "$out" | tail -n 30
            echo "FAIL make $check"
        fi
    done
) >"$static_log" 2>&1 &
static_pid=$!

for variant in release asan; do
    stage "unit tests ($variant)"
    for src in test/unit/test_*.c; do
        run_unit "build/$variant/$(basename "$src" .c)"
    done
done

# Fuzz smoke: each libFuzzer target (test/fuzz/, docs/fuzzing.md) runs for
# FUZZ_SMOKE_SECONDS (default 10) on a scratch copy of its seed corpus and counts as one test:
# passed if it ran clean, failed if it crashed, broke an invariant or could not be built.
# test/fuzz/run.sh prints one line per target, "ok   fuzz_http (N runs ...)" or "FAIL ...".
stage "fuzz smoke (${FUZZ_SMOKE_SECONDS:-10} s per target)"
if out=$(make --no-print-directory -s fuzz-build 2>&1); then
    out=$(test/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-10}" 2>&1)
    printf '%s\n' "$out"
    p=$(grep -c '^ok   fuzz_' <<<"$out")
    f=$(grep -c '^FAIL fuzz' <<<"$out")
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1 # run.sh did not even get to run a target
    fi
    passed=$((passed + p))
    failed=$((failed + f))
else
    printf '%s\n' "$out" | tail -n 20
    echo "FAIL fuzz targets did not build (make fuzz-build)"
    failed=$((failed + 1))
fi

wait "$static_pid"
stage "static checks, output"
cat "$static_log"
passed=$((passed + $(grep -c '^ok   make ' "$static_log")))
failed=$((failed + $(grep -c '^FAIL make ' "$static_log")))
if ! grep -q '^ok   make \|^FAIL make ' "$static_log"; then
    failed=$((failed + 1)) # the checks did not even run
fi

# pytest's last line reads like "== 40 passed, 2 failed, 1 error in 9.12s ==".
# The two builds' suites run at the same time (INTEGRATION_SERIAL=1: one after the other):
# most of their time is spent waiting (timeouts, pings, servers starting), not computing, so
# together they take little more than the slower alone. Every test starts its own servers on
# free ports, so the two never meet. Each suite's output goes to build/test-logs/.
start_pytest() {
    local label=$1 bin=$2
    shift 2
    mkdir -p build/test-logs
    WSRELAY_BIN="$PWD/$bin" "$PY" -m pytest -q -p no:cacheprovider "${@:-test/integration}" \
        >"build/test-logs/integration-$label.log" 2>&1
}

count_pytest() {
    local label=$1 bin=$2 out p f e
    stage "integration tests ($label: $bin), output"
    out=$(cat "build/test-logs/integration-$label.log")
    printf '%s\n' "$out" | tail -n 40
    p=$(tail -n 1 <<<"$out" | grep -o '[0-9]* passed' | grep -o '[0-9]*')
    f=$(tail -n 1 <<<"$out" | grep -o '[0-9]* failed' | grep -o '[0-9]*')
    e=$(tail -n 1 <<<"$out" | grep -o '[0-9]* error' | grep -o '[0-9]*')
    p=${p:-0}
    f=$((${f:-0} + ${e:-0}))
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1 # pytest did not even get to run tests
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

if [ -d test/integration ]; then
    stage "integration tests (release and asan$([ "${INTEGRATION_SERIAL:-0}" = 1 ] && echo ', one after the other' || echo ', at the same time'))"
    if [ "${INTEGRATION_SERIAL:-0}" = 1 ]; then
        start_pytest release wsrelay
        WSRELAY_SANITIZED=1 start_pytest asan build/asan/wsrelay
    else
        start_pytest release wsrelay &
        release_pid=$!
        # tests skip RSS checks under ASan
        WSRELAY_SANITIZED=1 start_pytest asan build/asan/wsrelay &
        asan_pid=$!
        wait "$release_pid" "$asan_pid"
    fi
    count_pytest release wsrelay
    count_pytest asan build/asan/wsrelay

    # The TLS pass (issue 13): the suites that speak the protocols, once more with every
    # server on --tls-cert and every client on TLS (conftest.py's WSRELAY_TEST_TLS): the
    # relay and presence, every Autobahn-numbered echo group, the handshake, latest position
    # wins. Both builds, at the same time as above.
    stage "integration tests over TLS (release and asan)"
    tls_suites="test/integration/test_relay.py test/integration/test_echo.py
        test/integration/test_second_client.py test/integration/test_handshake.py
        test/integration/test_latest_wins.py test/integration/test_autobahn_*.py"
    # shellcheck disable=SC2086
    WSRELAY_TEST_TLS=1 start_pytest release-tls wsrelay -m "not storm" $tls_suites &
    release_pid=$!
    # shellcheck disable=SC2086
    WSRELAY_TEST_TLS=1 WSRELAY_SANITIZED=1 start_pytest asan-tls build/asan/wsrelay \
        -m "not storm" $tls_suites &
    asan_pid=$!
    wait "$release_pid" "$asan_pid"
    count_pytest release-tls wsrelay
    count_pytest asan-tls build/asan/wsrelay
fi

# The Debian package (scripts/deb-check.sh, issue 14): built with Debian's flags, lintian
# clean of errors, systemd-analyze verify, installed with apt-get, the installed binary
# serving the installed page, purged again. One test; about 35 s here, most of it the
# package's own build. Only as root (it installs the package), and only if wsrelay is not
# installed already: a machine's own wsrelay is never upgraded or removed by a test run.
stage "Debian package (scripts/deb-check.sh)"
if [ "$(id -u)" != 0 ]; then
    echo "skip scripts/deb-check.sh: needs root (make deb-check as root runs it)"
elif dpkg-query -W -f='${Status}' wsrelay 2>/dev/null | grep -q 'install ok installed'; then
    echo "skip scripts/deb-check.sh: a wsrelay package is installed on this machine; left alone"
elif out=$(scripts/deb-check.sh 2>&1); then
    printf '%s\n' "$out" | grep -E '^(ok|skip|FAIL) |^deb-check: '
    passed=$((passed + 1))
else
    printf '%s\n' "$out" | tail -n 40
    echo "FAIL scripts/deb-check.sh"
    failed=$((failed + 1))
fi

# Browser tests (test/e2e/*.test.mjs, docs/page.md): the page in Debian's chromium, driven
# by playwright-core (scripts/deps.sh installs both), against each build; every test case
# counts as one. Node's TAP reporter ends with "# pass N", "# fail N", "# cancelled N"
# (a file that cannot even load, e.g. node_modules missing, counts as one failure there).
run_e2e() {
    local label=$1 bin=$2 out p f c
    stage "e2e (browser) ($label: $bin)"
    out=$(WSRELAY_BIN="$PWD/$bin" node --test --test-reporter=tap test/e2e/*.test.mjs 2>&1)
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' <<<"$out")
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' <<<"$out")
    c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' <<<"$out")
    p=${p:-0}
    f=$((${f:-0} + ${c:-0}))
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1 # node did not even get to run tests
    fi
    if [ "$f" -ne 0 ]; then
        printf '%s\n' "$out" # every failure, with what was expected and what was seen
    else
        grep -E '^ok ' <<<"$out"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

if [ -d test/e2e ]; then
    run_e2e release wsrelay
    run_e2e asan build/asan/wsrelay
    # Once more over https:// and wss:// (issue 13), with the test CA trusted by chromium
    # (harness.mjs, chapter 0): the sanitizer build, whose TLS paths then meet a real
    # browser's handshakes, reconnects and abrupt closes.
    WSRELAY_TEST_TLS=1 run_e2e asan-tls build/asan/wsrelay
fi

echo "(tests took ${SECONDS} s)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

# check-lib.sh: what the check scripts share (deb-check.sh, fresh-machine.sh,
# systemd-check.sh): one line per check, "ok   …", "FAIL …" or "skip …", counted in
# $passed and $failed for the summary each prints last. Sourced, not run.
passed=0
failed=0
ok() {
    echo "ok   $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $*"
    failed=$((failed + 1))
}
skip() { echo "skip $*"; }

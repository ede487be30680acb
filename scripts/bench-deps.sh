#!/bin/sh
# Installs what `make bench` needs on a fresh Debian 12 machine, and nothing that is already
# there (the pattern of scripts/deps.sh: dpkg-query first, apt-get only for the missing).
# Kept apart from deps.sh so that `make test` never installs gnuplot.
#
#   build:  gcc make pkg-config libssl-dev libjsmn-dev libhiredis-dev (./wsrelay and
#           bench/wsbench; wsrelay links hiredis for its Redis backplane, issue 5)
#   run:    util-linux (taskset), python3 (Debian's, for bench/run.py: standard library only)
#   redis:  redis-server (the wsrelay-2node runs start their own, on a free loopback port,
#           and leave alone any system instance the package's service may run on :6379)
#   plots:  gnuplot-nox
#   peers:  node and npm for bench/peers; Debian's nodejs/npm only if no node is on PATH
#           (a newer Node from elsewhere is used as it is)
set -eu

PACKAGES="
gcc make pkg-config libssl-dev libjsmn-dev libhiredis-dev
util-linux python3 redis-server gnuplot-nox
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -z "$missing" ]; then
    echo "bench-deps: all present"
    exit 0
fi

echo "bench-deps: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh image may have no package lists yet: update only if the first attempt fails.
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi

#!/bin/sh
# Installs what `make bench` needs on a fresh Debian 12 machine, and nothing that is already
# there (scripts/apt-missing.sh: dpkg-query first, apt-get only for the missing).
# Kept apart from deps.sh so that `make test` never installs gnuplot.
#
#   build:  gcc make pkg-config libssl-dev libjsmn-dev libhiredis-dev (./wsrelay and
#           bench/wsbench; wsrelay links hiredis for its Redis backplane, issue 5)
#   run:    util-linux (taskset), python3 (Debian's, for bench/run.py: standard library only)
#   redis:  redis-server (the wsrelay-2node runs start their own, on a free loopback port,
#           and leave alone any system instance the package's service may run on :6379)
#   plots:  gnuplot-nox
#   static: wrk (bench/static_files.py: the page's files against nginx)
#   drain:  haproxy (bench/drain_reconnects.py: two nodes behind it)
#   nginx:  nginx (the tls scenario's handshake peer, issue 13: run.py starts its own binary
#           with its own config on a free loopback port and stops it by PID; Debian's
#           package may also set up a system service on :80, which the bench never touches)
#   peers:  node and npm for bench/peers; Debian's nodejs/npm only if no node is on PATH
#           (a newer Node from elsewhere is used as it is)
set -eu

PACKAGES="
gcc make pkg-config libssl-dev libjsmn-dev libhiredis-dev
util-linux python3 redis-server gnuplot-nox wrk nginx haproxy
"

# node and npm: Debian's packages only if no node or npm is on PATH at all.
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

# shellcheck disable=SC2086
"$(dirname "$0")/apt-missing.sh" bench-deps $PACKAGES

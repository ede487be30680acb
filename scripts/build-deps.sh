#!/bin/sh
# Checks that what compiling wsrelay needs is on this machine, before make compiles anything
# (`make`, `make run` and `make install` call it; so does `make test`, through deps.sh).
#
#   compiler  cc that compiles against the C library's headers (Debian: gcc, libc6-dev)
#   pkg-config                       (pkg-config)
#   libcrypto.pc   OpenSSL           (libssl-dev)
#   hiredis.pc     the Redis client  (libhiredis-dev)
#   libsystemd.pc  sd_notify, readiness for systemd (libsystemd-dev)
#   <jsmn.h>       the JSON tokenizer, header only, no .pc  (libjsmn-dev)
#   brotli         the command that precompresses the page (brotli; gzip is essential)
#
# Each is checked the way the build uses it (pkg-config, or the compiler finding the header),
# so a library installed by other means than Debian's package counts as present too. When all
# are there, nothing is printed and nothing is downloaded.
# When some are missing:
#   - as root, with apt-get: install exactly the missing packages (one line says which), then
#     let the build go on;
#   - otherwise: one line naming the missing packages and the command that installs them,
#     and exit status 1, so that make stops before the first compile error.
#
#   usage: scripts/build-deps.sh            (CC and PKG_CONFIG are taken from the environment)
set -eu
cd "$(dirname "$0")/.."

CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}

missing=""
need() { missing="$missing $*"; }

# CC may be several words ("ccache gcc"): the first is the program to look for.
# shellcheck disable=SC2086
set -- $CC
if ! command -v "$1" >/dev/null 2>&1; then
    need gcc libc6-dev # --no-install-recommends: gcc alone would come without <stdio.h>
elif ! echo '#include <stdio.h>' | $CC -E -x c - >/dev/null 2>&1; then
    need libc6-dev # gcc alone (it only recommends libc6-dev) has no <stdio.h>
fi
command -v make >/dev/null 2>&1 || need make
if command -v "$PKG_CONFIG" >/dev/null 2>&1; then
    "$PKG_CONFIG" --exists libcrypto || need libssl-dev
    "$PKG_CONFIG" --exists hiredis || need libhiredis-dev
    "$PKG_CONFIG" --exists libsystemd || need libsystemd-dev
else
    need pkg-config
    # Without pkg-config the .pc files cannot be asked: look for the packages' headers instead.
    [ -f /usr/include/openssl/evp.h ] || need libssl-dev
    [ -f /usr/include/hiredis/hiredis.h ] || need libhiredis-dev
    [ -f /usr/include/systemd/sd-daemon.h ] || need libsystemd-dev
fi
# jsmn ships no .pc: ask the compiler whether it finds the header (preprocessing only).
if command -v "$1" >/dev/null 2>&1; then
    echo '#include <jsmn.h>' | $CC -E -x c - >/dev/null 2>&1 || need libjsmn-dev
else
    [ -f /usr/include/jsmn.h ] || need libjsmn-dev
fi

command -v brotli >/dev/null 2>&1 || need brotli

[ -z "$missing" ] && exit 0
missing=${missing# }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # apt-missing.sh prints "build-deps: installing <packages>" and installs only those.
    # shellcheck disable=SC2086
    exec scripts/apt-missing.sh build-deps $missing
fi

if command -v apt-get >/dev/null 2>&1; then
    echo "wsrelay: missing build packages: $missing; install them with: sudo apt-get install $missing" >&2
else
    echo "wsrelay: missing build packages (Debian names): $missing; install them with your package manager" >&2
fi
exit 1

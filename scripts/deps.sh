#!/bin/sh
# Installs what `make test` needs on a fresh Debian 12 machine, and nothing that is already
# there: each package is checked with dpkg-query first, and apt-get runs only for the missing.
set -eu

PACKAGES="
gcc make pkg-config clang libclang-rt-14-dev
clang-format clang-tidy cppcheck
libssl-dev libjsmn-dev libcmocka-dev libhiredis-dev
redis-server haproxy
python3 python3-pytest python3-websockets
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all present"
    exit 0
fi

echo "deps: installing$missing"
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

#!/bin/sh
# Installs the Debian packages named as arguments that are not installed yet, and nothing
# else: each is checked with dpkg-query first, and apt-get runs only for the missing ones.
# Shared by scripts/deps.sh (make test) and scripts/bench-deps.sh (make bench).
#   usage: scripts/apt-missing.sh LABEL PACKAGE...     (LABEL prefixes the messages)
set -eu
label=$1
shift

missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "$label: all packages present"
    exit 0
fi

echo "$label: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh image may have no package lists at all (Debian's container images delete them):
# then update first, rather than fail once with "Unable to locate package". Otherwise update
# only if the first attempt fails (lists too old for the mirror).
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    $SUDO apt-get update
fi
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi

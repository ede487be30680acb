#!/bin/bash
# Proves that on a machine shaped like a fresh Debian 12 image, `git clone … && make run` ends
# with the server answering GET / (issue 10, "A test proves it"). `make fresh-check` runs it;
# it is not part of `make test`: it takes minutes and downloads Debian packages.
#
# The fresh machine is a Debian 12 (bookworm) minbase root made by debootstrap, holding what
# a fresh image brings (gcc libc6-dev make pkg-config libssl-dev git ca-certificates curl) and
# nothing of ours: no brotli, libjsmn-dev, libhiredis-dev, libsystemd-dev, libcmocka-dev or
# redis-server, and, as in Debian's container images, no package lists yet. It is bootstrapped
# once a day into a cached tarball; every run unpacks a pristine copy of it, works in that
# copy through chroot and deletes it.
# The repository under test is the committed HEAD of the one this script lives in, cloned
# inside the copy with the copy's own git (uncommitted changes are not part of the test).
#
# Checks, one line each ("ok   …" or "FAIL …"), then a summary; exit status 0 only if all pass:
#   1. the copy is fresh: Debian 12, the image's packages present, ours absent
#   2. as an unprivileged user (uid 65534), git clone && make stops before compiling
#      anything, with one line naming brotli, libhiredis-dev, libjsmn-dev and libsystemd-dev,
#      and a nonzero status
#   3. as root, git clone && make run installs exactly the missing build packages (its
#      "build-deps: installing …" line; dpkg before and after, apt's history)
#   4. ... and the server it starts answers GET / with 200 and the page (www/index.html)
#   5. ... and stops on SIGTERM to its PID, with make exiting 0
#   6. once all is present, make clean && make builds with no install line and no network
#      (it runs in a network namespace of its own, which has none)
#
#   usage: scripts/fresh-machine.sh [WORKDIR]     as root (or with sudo)
#          WORKDIR holds the cache and this run's copy; default build/fresh-machine.
#          FRESH_MIRROR: the Debian mirror (default http://deb.debian.org/debian).
# The logs of the last run stay in WORKDIR/last-run/ (debootstrap, make output, curl's).
set -eu

SUITE=bookworm
# What a fresh Debian 12 image has that the build may look for; debootstrap resolves their
# dependencies. Nothing of ours: those are what the checks expect make to find missing.
# libc6-dev is named because debootstrap skips Recommends: `apt-get install gcc` brings it
# (gcc recommends it), and a gcc without <stdio.h> is no machine anyone builds C on.
IMAGE_PACKAGES=(gcc libc6-dev make pkg-config libssl-dev git ca-certificates curl)
OURS_ABSENT=(brotli libjsmn-dev libhiredis-dev libsystemd-dev libcmocka-dev redis-server)
# what build-deps.sh must name and install, sorted
BUILD_MISSING=(brotli libhiredis-dev libjsmn-dev libsystemd-dev)
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Every wait is bounded (seconds).
T_BOOTSTRAP=1800 # debootstrap: downloads the whole base system, once a day
T_CLONE=120
T_MAKE_USER=120   # make as a user: build-deps.sh stops it at once
T_RUN=600         # make run as root: apt-get update + install, then the whole build
T_STOP=10         # the server exits within 2 s of SIGTERM (README)
T_REBUILD=900     # make clean && make, offline

self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "fresh-machine: needs root (debootstrap, chroot, mounts): sudo $0 $*" >&2
    exit 2
fi

# All mounts happen in a private mount namespace: they can never show up on (or propagate
# to) the host's /dev, /proc or /sys, and the kernel drops any that are left when this script
# ends, even if it is killed.
if [ -z "${FRESH_MACHINE_NS:-}" ]; then
    exec unshare --mount --propagation private -- env FRESH_MACHINE_NS=1 bash "$self" "$@"
fi

for tool in debootstrap chroot setsid timeout unshare curl git tar flock ps mountpoint; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        if [ "$tool" = debootstrap ]; then
            echo "== installing debootstrap (Debian's package) on this machine"
            "$repo/scripts/apt-missing.sh" fresh-machine debootstrap >/dev/null
        else
            echo "fresh-machine: $tool is missing on this machine" >&2
            exit 2
        fi
    fi
done
PY=$(command -v python3 || echo /usr/bin/python3)

work=${1:-$repo/build/fresh-machine}
mkdir -p "$work/cache"
work=$(cd "$work" && pwd -P) # physical: compared with /proc/PID/root at cleanup
run=$work/run.$$ # this run's copy and logs; the copy goes, the logs become last-run/
root=$run/root
log=$run/log
mkdir -p "$root" "$log"

start=$SECONDS
# shellcheck source=scripts/check-lib.sh
. "$repo/scripts/check-lib.sh"
# The last lines of a log, indented, after a FAIL.
show() { tail -n "${2:-15}" "$1" | sed 's/^/     | /'; }

# Commands inside the copy get a clean environment: nothing from this shell (PATH with
# pyenv or a NodeSource node, MAKEFLAGS from `make fresh-check`) leaks into the fresh machine.
ENV=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    LANG=C.UTF-8 TERM=dumb)
as_root=(chroot "$root" "${ENV[@]}" HOME=/root)
as_user=(chroot --userspec=65534:65534 "$root" "${ENV[@]}" HOME=/tmp)

# ---- cleanup: the server, the mounts, the copy (never the cache) -----------------------------
make_pid=""
cleanup() {
    set +e
    # Anything still running in the copy (the server if a check failed half-way, a daemon a
    # package started): found by its root directory, stopped by PID.
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
            kill -KILL "${p#/proc/}" 2>/dev/null
        fi
    done
    [ -n "$make_pid" ] && wait "$make_pid" 2>/dev/null
    for m in dev sys proc; do
        mountpoint -q "$root/$m" && { umount -R "$root/$m" || umount -R -l "$root/$m"; }
    done
    # Deleting a tree with /dev still bound inside would delete the machine's /dev: only
    # delete when nothing under the copy is a mount point, and never cross a file system.
    if grep -q " ${root}[/ ]" /proc/self/mountinfo; then
        echo "fresh-machine: mounts left under $root, not deleting it" >&2
    else
        rm -rf --one-file-system "$root"
    fi
    rm -rf "$work/last-run"
    mv "$log" "$work/last-run" && rmdir "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the cached root: bootstrapped once a day, never used in place ----------------------------
# Keyed by date and the package list: a new day or a new list means a new bootstrap, and the
# older tarballs are deleted. Built under a lock and renamed into place when complete, so a
# concurrent or interrupted run never unpacks half a root.
key=$SUITE-minbase-$(date +%Y%m%d)-$(printf %s "${IMAGE_PACKAGES[*]}" | sha256sum | cut -c1-8)
tarball=$work/cache/$key.tar
exec 9>"$work/cache/.lock"
flock -w $T_BOOTSTRAP 9
if [ ! -f "$tarball" ]; then
    echo "== bootstrapping Debian $SUITE (minbase + ${IMAGE_PACKAGES[*]}) into the cache"
    t0=$SECONDS
    boot=$work/cache/$key.d
    rm -rf --one-file-system "$boot"
    if ! timeout $T_BOOTSTRAP debootstrap --variant=minbase \
        --include="$(IFS=,; echo "${IMAGE_PACKAGES[*]}")" \
        "$SUITE" "$boot" "$MIRROR" >"$log/debootstrap.log" 2>&1; then
        fail "debootstrap $SUITE from $MIRROR (log: $work/last-run/debootstrap.log)"
        show "$log/debootstrap.log"
        exit 1
    fi
    # A Debian 12 image's sources; no package lists and no downloaded .debs yet, as in
    # Debian's container images (apt-missing.sh then has to run apt-get update itself).
    cat >"$boot/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
    chroot "$boot" "${ENV[@]}" apt-get clean
    rm -rf "${boot:?}"/var/lib/apt/lists/*
    tar --numeric-owner -C "$boot" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$boot"
    find "$work/cache" -maxdepth 1 -name "$SUITE-minbase-*.tar" ! -name "$key.tar" -delete
    echo "== cached $key.tar ($(du -h "$tarball" | cut -f1), $((SECONDS - t0)) s)"
fi
flock -u 9

t0=$SECONDS
tar --numeric-owner -C "$root" -xpf "$tarball"
copy_secs=$((SECONDS - t0))

# What apt-get inside needs: /proc, /dev (/dev/null, /dev/urandom, and /dev/pts, where apt
# opens a pseudo-terminal for its log; hence --rbind), /sys, DNS.
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind /sys "$root/sys"
rm -f "$root/etc/resolv.conf"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# Status of each named package inside the copy: "name:installed" or "name:absent".
pkg_state() {
    local p s out=""
    for p in "$@"; do
        # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not ours
        s=$("${as_root[@]}" dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case $s in *" installed") out="$out $p:installed" ;; *) out="$out $p:absent" ;; esac
    done
    echo "${out# }"
}
all_are() { # all_are installed|absent PACKAGE...
    local want=$1 w
    shift
    for w in $(pkg_state "$@"); do
        [ "${w#*:}" = "$want" ] || return 1
    done
}

# ---- 1. the copy is a fresh machine ---------------------------------------------------------
debian=$(cat "$root/etc/debian_version")
if [ "${debian%%.*}" = 12 ] && all_are installed "${IMAGE_PACKAGES[@]}" \
    && all_are absent "${OURS_ABSENT[@]}" \
    && [ -z "$(find "$root/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock)" ]; then
    ok "fresh machine: Debian $debian minbase, pristine copy of cache $key.tar" \
        "(unpacked in $copy_secs s); present: ${IMAGE_PACKAGES[*]}; absent: ${OURS_ABSENT[*]};" \
        "no package lists"
else
    fail "fresh machine: Debian $debian; $(pkg_state "${IMAGE_PACKAGES[@]}" "${OURS_ABSENT[@]}")"
fi

# The repository as a user would clone it: the committed HEAD, pushed into a bare repository
# inside the copy, which the copy's own git then clones. The user gets a copy of it they own:
# git refuses to clone from a local repository owned by someone else ("dubious ownership"),
# a check a clone over the network never meets.
sha=$(git -c safe.directory="$repo" -C "$repo" rev-parse HEAD)
if [ -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain)" ]; then
    echo "== note: $repo has uncommitted changes; they are not tested (HEAD is)"
fi
git init -q --bare "$root/srv/wsrelay.git"
git -c safe.directory="$repo" -C "$repo" push -q --no-verify "$root/srv/wsrelay.git" \
    "$sha:refs/heads/main"
git -C "$root/srv/wsrelay.git" symbolic-ref HEAD refs/heads/main
mkdir "$root/srv/user"
cp -a "$root/srv/wsrelay.git" "$root/srv/user/wsrelay.git"
chown -R 65534:65534 "$root/srv/user/wsrelay.git"
subject=$(git -c safe.directory="$repo" -C "$repo" log -1 --format='%h %s' "$sha" | cut -c1-80)
echo "== testing commit $subject"

# ---- 2. as a user: make stops before compiling, naming what is missing -----------------------
before=$(pkg_state "${BUILD_MISSING[@]}")
if ! timeout $T_CLONE "${as_user[@]}" git clone -q /srv/user/wsrelay.git /tmp/wsrelay \
    >"$log/user-clone.log" 2>&1; then
    fail "as a user: git clone"
    show "$log/user-clone.log"
else
    set +e
    timeout $T_MAKE_USER "${as_user[@]}" sh -c 'cd /tmp/wsrelay && exec make' \
        >"$log/user-make.log" 2>&1
    rc=$?
    set -e
    # Its own lines, without make's "make: *** [Makefile:N: build-deps] Error 1".
    own=$(grep -v '^make: \*\*\*' "$log/user-make.log" || true)
    objs=$(find "$root/tmp/wsrelay" -name '*.o' | wc -l)
    named=yes
    for p in "${BUILD_MISSING[@]}"; do
        case $own in *"$p"*) ;; *) named=no ;; esac
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(printf '%s\n' "$own" | wc -l)" = 1 ] \
        && [ "$named" = yes ] && [ "$objs" = 0 ] && [ ! -e "$root/tmp/wsrelay/wsrelay" ] \
        && [ "$(pkg_state "${BUILD_MISSING[@]}")" = "$before" ]; then
        ok "as a user (uid 65534): git clone && make stops with status $rc before compiling" \
            "(no .o), in one line: $own"
    else
        fail "as a user: make status $rc, $objs object files," \
            "packages $(pkg_state "${BUILD_MISSING[@]}")"
        show "$log/user-make.log"
    fi
fi

# ---- 3, 4, 5. as root: make run installs what is missing, serves, stops ----------------------
# A free loopback port, picked below the ephemeral range so that neither apt's downloads nor
# other programs' port-0 listeners take it while the build runs.
port=$("$PY" -c '
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32768)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
')
port=${port:?no free loopback port found}
before=$(pkg_state "${BUILD_MISSING[@]}" libcmocka-dev redis-server)
others_absent="libcmocka-dev:absent redis-server:absent" # make run must not install test deps
served=no
if ! timeout $T_CLONE "${as_root[@]}" git clone -q /srv/wsrelay.git /root/wsrelay \
    >"$log/root-clone.log" 2>&1 \
    || [ "$("${as_root[@]}" git -C /root/wsrelay rev-parse HEAD)" != "$sha" ]; then
    fail "as root: git clone of $sha"
    show "$log/root-clone.log"
else
    run_args="--host 127.0.0.1 --port $port"
    echo "== as root: git clone && make run RUN_ARGS='$run_args' (up to $T_RUN s)"
    t0=$SECONDS
    # setsid: make and the server in a session of their own, apart from this script's. A
    # background job is no process-group leader, so setsid does not fork: $! is make itself
    # (chroot, env and sh all exec), and also the id of that session's only process group.
    setsid "${as_root[@]}" sh -c "cd /root/wsrelay && exec make run RUN_ARGS='$run_args'" \
        </dev/null >"$log/make-run.log" 2>&1 &
    make_pid=$!
    status=""
    while [ $((SECONDS - t0)) -lt $T_RUN ] && kill -0 "$make_pid" 2>/dev/null; do
        status=$(curl -s --max-time 5 -D "$log/get.headers" -o "$log/get.body" \
            -w '%{http_code}' "http://127.0.0.1:$port/" || true)
        [ "$status" = 200 ] && break
        sleep 1
    done
    run_secs=$((SECONDS - t0))
    deps_line=$(grep '^build-deps: ' "$log/make-run.log" || true)
    installed=$(echo "${deps_line#build-deps: installing }" | tr ' ' '\n' | sort | xargs)
    after=$(pkg_state "${BUILD_MISSING[@]}" libcmocka-dev redis-server)
    history=$(grep '^Commandline: apt-get install' "$root/var/log/apt/history.log" 2>/dev/null \
        || true)

    # 3. exactly the missing build packages, installed by make's apt-get and by nothing else
    if [ "$installed" = "${BUILD_MISSING[*]}" ] \
        && [ "$before" = "$(printf '%s:absent ' "${BUILD_MISSING[@]}")$others_absent" ] \
        && [ "$after" = "$(printf '%s:installed ' "${BUILD_MISSING[@]}")$others_absent" ] \
        && [ "$(printf '%s\n' "$history" | wc -l)" = 1 ] && [ -n "$history" ]; then
        ok "as root: make run printed \"$deps_line\"; dpkg: ${BUILD_MISSING[*]} absent before," \
            "installed after (one apt-get install in apt's history), libcmocka-dev redis-server" \
            "still absent"
    else
        fail "as root: install line \"$deps_line\"; before: $before; after: $after"
        show "$log/make-run.log"
    fi

    # 4. the server answers GET / with the page from the clone
    status_line=$(head -n 1 "$log/get.headers" 2>/dev/null | tr -d '\r' || true)
    if [ "$status" = 200 ] && cmp -s "$log/get.body" "$root/root/wsrelay/www/index.html"; then
        served=yes
        ok "as root: git clone && make run answered GET / on 127.0.0.1:$port after $run_secs s:" \
            "$status_line, body = www/index.html"
    else
        fail "as root: no 200 for GET / on 127.0.0.1:$port after $run_secs s (last: '$status')"
        show "$log/make-run.log" 25
    fi

    # 5. stop the server by its PID: make's child (make runs the recipe directly, or via sh)
    srv_pid=""
    p=$make_pid
    for _ in 1 2 3; do
        p=$(ps -o pid= --ppid "$p" | head -n 1 | tr -d ' ')
        [ -n "$p" ] || break
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = wsrelay ]; then
            srv_pid=$p
            break
        fi
    done
    if [ -n "$srv_pid" ]; then
        kill -TERM "$srv_pid"
        t1=$SECONDS
        while [ $((SECONDS - t1)) -lt $T_STOP ] && kill -0 "$make_pid" 2>/dev/null; do
            sleep 0.2
        done
    fi
    if kill -0 "$make_pid" 2>/dev/null; then
        kill -KILL -- "-$make_pid" 2>/dev/null || true # its session's group: ours alone
    fi
    set +e
    wait "$make_pid"
    make_rc=$?
    set -e
    make_pid=""
    after_stop=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" \
        || true)
    if [ -n "$srv_pid" ] && [ "$make_rc" = 0 ] && [ "$after_stop" = 000 ]; then
        ok "as root: server (PID $srv_pid) stopped on SIGTERM within $T_STOP s," \
            "make run exited 0, port $port closed"
    else
        fail "as root: stopping the server: PID '${srv_pid}', make status $make_rc," \
            "GET / after: $after_stop"
        show "$log/make-run.log"
    fi
fi

# ---- 6. everything present: make is silent about packages and needs no network -------------
if [ "$served" = yes ]; then
    # shellcheck disable=SC2016 # dpkg-query's fields
    pkgs_before=$("${as_root[@]}" dpkg-query -W -f='${Package} ${Version}\n')
    debs_before=$(find "$root/var/cache/apt/archives" -name '*.deb' | wc -l)
    t0=$SECONDS
    set +e
    # unshare --net: a network namespace of its own has no route anywhere, so any download
    # attempt would fail the build; the dpkg list and apt's cache must not change either.
    timeout $T_REBUILD unshare --net "${as_root[@]}" \
        sh -c 'cd /root/wsrelay && make clean && make' \
        >"$log/rebuild.log" 2>&1
    rc=$?
    rebuild_secs=$((SECONDS - t0))
    set -e
    # shellcheck disable=SC2016 # dpkg-query's fields
    pkgs_after=$("${as_root[@]}" dpkg-query -W -f='${Package} ${Version}\n')
    debs_after=$(find "$root/var/cache/apt/archives" -name '*.deb' | wc -l)
    # ... and that namespace really is offline: the mirror cannot be reached from it.
    offline=yes
    if timeout 20 unshare --net "${as_root[@]}" curl -s --max-time 5 -o /dev/null "$MIRROR/"; then
        offline=no
    fi
    if [ "$rc" = 0 ] && [ -x "$root/root/wsrelay/wsrelay" ] && [ "$offline" = yes ] \
        && ! grep -q '^build-deps: \|^wsrelay: missing' "$log/rebuild.log" \
        && [ "$pkgs_before" = "$pkgs_after" ] && [ "$debs_before" = "$debs_after" ]; then
        ok "all present: make clean && make with no network rebuilt ./wsrelay in" \
            "$rebuild_secs s, no install line, dpkg and apt's cache unchanged"
    else
        fail "all present: make clean && make offline: status $rc (offline: $offline)," \
            "or packages or install line changed"
        show "$log/rebuild.log"
    fi
else
    fail "all present: make again (skipped: make run did not serve)"
fi

echo "fresh-machine: $passed passed, $failed failed (commit ${sha:0:12}," \
    "$((SECONDS - start)) s before cleanup; logs in $work/last-run/)"
[ "$failed" -eq 0 ]

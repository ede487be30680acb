#!/bin/bash
# Proves the package's unit works under a real systemd (issue 14): on machines whose PID 1 is
# not systemd (CI's, this project's), `systemctl start wsrelay` cannot be tried in place, so
# this boots a minimal Debian 12 with systemd as its PID 1 in systemd-nspawn (its own network
# namespace: nothing it serves is reachable from outside), installs build/deb/'s package and
# checks, one line each ("ok   …" / "FAIL …"):
#   1. the unit starts (Type=notify: systemd saw READY=1) and says so in its status
#   2. the installed server answers GET / with the installed page, and a WebSocket upgrade
#   3. it runs as a dynamic user, with no capabilities, no new privileges and a seccomp filter
#   4. systemctl reload reaches it (SIGHUP) and systemd sees the reload finish
#   5. systemd-analyze security scores it (the figure is printed)
#   6. systemctl stop drains and stops it with status 0
# Then the container is powered off. Needs root; the first run downloads Debian packages
# (debootstrap, cached as a tarball under WORKDIR for a day). Not part of `make test`.
#
#   usage: scripts/systemd-check.sh [WORKDIR]   (default build/systemd-check; make systemd-check)
set -u
cd "$(dirname "$0")/.." || exit 1
WORK=${1:-build/systemd-check}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh

[ "$(id -u)" -eq 0 ] || { echo "systemd-check: needs root"; exit 2; }
scripts/apt-missing.sh systemd-check debootstrap systemd-container >/dev/null || exit 2
DEB=$(ls build/deb/wsrelay_*_"$(dpkg --print-architecture)".deb 2>/dev/null | tail -n 1)
[ -n "$DEB" ] || { echo "systemd-check: no package in build/deb/ (make deb first)"; exit 2; }

mkdir -p "$WORK"
CACHE=$WORK/bookworm-systemd.tar
if [ ! -f "$CACHE" ] || [ -n "$(find "$CACHE" -mmin +1440)" ]; then
    rm -rf "$WORK/bootstrap"
    # the package's run-time dependencies too (dpkg-deb -f … Depends), so that dpkg -i below
    # needs no network inside the root
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,curl,ca-certificates,libssl3,libhiredis0.14,libsystemd0 \
        bookworm "$WORK/bootstrap" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        { echo "systemd-check: debootstrap failed (see $WORK/debootstrap.log)"; exit 2; }
    tar -C "$WORK/bootstrap" -cf "$CACHE" . && rm -rf "$WORK/bootstrap"
fi
ROOT=$WORK/root
rm -rf "$ROOT" && mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$CACHE"
cp "$DEB" "$ROOT/root/"
chroot "$ROOT" dpkg -i "/root/$(basename "$DEB")" >"$WORK/install.log" 2>&1 ||
    { echo "systemd-check: the package did not install (see $WORK/install.log)"; exit 2; }

# --keep-unit --register=no: the host has no systemd to hand the container a scope or a
# machine name to (no system bus); --private-network: a loopback of its own.
systemd-nspawn --keep-unit --register=no --private-network -D "$ROOT" -b \
    >"$WORK/console.log" 2>&1 </dev/null &
nspawn=$!
init=""
for _ in $(seq 100); do
    init=$(pgrep -P "$nspawn" | head -n 1)
    [ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ] && break
    sleep 0.1
done
inside() { nsenter -t "$init" -a "$@"; }
for _ in $(seq 300); do # until boot is done (running, or degraded by some unrelated unit)
    state=$(inside systemctl is-system-running 2>/dev/null)
    [ "$state" = running ] || [ "$state" = degraded ] && break
    sleep 0.1
done

if [ "$(inside systemctl is-active wsrelay)" = active ]; then
    ok "systemctl: wsrelay.service active ($(inside systemctl show -p StatusText --value wsrelay))"
else
    fail "wsrelay.service is not active: $(inside systemctl status wsrelay --no-pager 2>&1 | tail -n 5)"
fi
page=$(inside curl -s --max-time 5 http://127.0.0.1:7071/)
if [ -n "$page" ] && [ "$page" = "$(cat "$ROOT/usr/share/wsrelay/www/index.html")" ]; then
    ok "GET / = /usr/share/wsrelay/www/index.html"
else
    fail "GET / did not return the installed page"
fi
head=$(inside curl -s -i --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    http://127.0.0.1:7071/ws 2>/dev/null | head -n 1 | tr -d '\r')
[ "$head" = "HTTP/1.1 101 Switching Protocols" ] && ok "/ws upgrades (101)" ||
    fail "/ws upgrade answered '$head'"
pid=$(inside systemctl show -p MainPID --value wsrelay)
status=$(inside cat "/proc/$pid/status" 2>/dev/null)
uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
if [ -n "$uid" ] && [ "$uid" -ge 61184 ] && grep -q '^CapEff:\s*0*$' <<<"$status" &&
    grep -q '^NoNewPrivs:\s*1' <<<"$status" && grep -q '^Seccomp:\s*2' <<<"$status"; then
    ok "runs as dynamic uid $uid, no capabilities, no new privileges, seccomp filter"
else
    fail "process credentials: $(grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' <<<"$status" | tr '\n' ' ')"
fi
if inside systemctl reload wsrelay && inside journalctl -u wsrelay --no-pager | grep -q 'signal=1 '; then
    ok "systemctl reload: SIGHUP reached it ($(inside systemctl show -p StatusText --value wsrelay))"
else
    fail "systemctl reload: $(inside journalctl -u wsrelay --no-pager -n 4 | tr '\n' ' ')"
fi
score=$(inside systemd-analyze security wsrelay.service --no-pager 2>&1 | tail -n 1)
[[ $score == *"exposure level"* ]] && ok "systemd-analyze security: ${score#*: }" ||
    fail "systemd-analyze security: $score"
inside systemctl stop wsrelay
if inside journalctl -u wsrelay --no-pager | grep -q '"drained"' &&
    [ "$(inside systemctl show -p ExecMainStatus --value wsrelay)" = 0 ]; then
    ok "systemctl stop: drained, exit status 0"
else
    fail "systemctl stop: $(inside journalctl -u wsrelay --no-pager -n 4 | tr '\n' ' ')"
fi

inside systemctl poweroff >/dev/null 2>&1
for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nspawn" 2>/dev/null && kill "$nspawn"
wait "$nspawn" 2>/dev/null
rm -rf "$ROOT"
echo "systemd-check: $passed passed, $failed failed (logs in $WORK/)"
[ "$failed" -eq 0 ]

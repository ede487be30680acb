#!/bin/bash
# The Debian package from start to end on this machine (issue 14, "The package builds and
# installs on a fresh machine ... the installed binary serves the installed page;
# systemd-analyze verify"). `make deb-check` runs it, as root, on a Debian 12 machine.
#
# Checks, one line each ("ok   …", "FAIL …" or "skip …"), then a summary; exit status 0 only
# if none failed:
#   1. what the build needs is installed: debian/control's Build-Depends and the tools below,
#      only the missing ones (scripts/apt-missing.sh), then dpkg-checkbuilddeps agrees
#   2. make deb builds build/deb/wsrelay_<version>_<arch>.deb
#   3. lintian reports no error (its warnings are printed; the accepted ones are listed in
#      docs/deploy.md)
#   4. apt-get install ./build/deb/wsrelay_*.deb installs it (and its dependencies)
#   5. systemd-analyze verify passes on the installed unit, which is debian/wsrelay.service
#   6. the installed files: the binary, the page with each .gz/.br variant no older than its
#      original (the server skips an older one as stale), the conffile, man -w wsrelay
#   7. the installed binary, run as the unit runs it (--config /etc/wsrelay/wsrelay.conf) but
#      on a free port and as an unprivileged user (uid 65534, as DynamicUser has no root),
#      serves the installed page: GET / is /usr/share/wsrelay/www/index.html byte for byte,
#      with Accept-Encoding: gzip it is index.html.gz with Content-Encoding: gzip and Vary
#   8. ... and stops on SIGTERM to its PID, exit status 0
#   9. if systemd runs this machine (PID 1): the service itself is active, serves, reloads;
#      else skipped (CI containers have no systemd as PID 1)
#  10. apt-get purge removes it: no binary, no /etc/wsrelay, no unit (unless wsrelay was
#      installed before this ran: then it is left installed, with the new version)
#
#   usage: scripts/deb-check.sh          as root
set -u
cd "$(dirname "$0")/.." || exit 2

if [ "$(id -u)" != 0 ]; then
    echo "deb-check: needs root (apt-get install of the package): sudo $0" >&2
    exit 2
fi

start=$SECONDS
# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh
show() { tail -n "${2:-20}" "$1" | sed 's/^/     | /'; }

log=build/deb-check
rm -rf "$log"
mkdir -p "$log"
log=$(cd "$log" && pwd)
srv_pid=""
cleanup() {
    if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
        kill -KILL "$srv_pid" 2>/dev/null
    fi
}
trap cleanup EXIT

# ---- 1. build dependencies -------------------------------------------------------------------
# debian/control's Build-Depends, names only: no version, no build profile ("<!nocheck>"),
# debhelper-compat being a virtual package of debhelper. Then the tools this script runs:
# dpkg-buildpackage (dpkg-dev), lintian, systemd-analyze (systemd), curl, man (man-db).
build_deps=$(awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
                  on && /^[ \t]/ { print; next }
                  { on = 0 }' debian/control |
    tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/<[^>]*>//g' -e 's/\[[^]]*\]//g' -e 's/ //g' |
    sed -e 's/^debhelper-compat$/debhelper/' | grep -v '^$' | sort -u | xargs)
tools="dpkg-dev lintian systemd curl man-db"
echo "== build dependencies: $build_deps; tools: $tools"
# shellcheck disable=SC2086
if scripts/apt-missing.sh deb-check $build_deps $tools >"$log/apt-deps.log" 2>&1 \
    && dpkg-checkbuilddeps >"$log/checkbuilddeps.log" 2>&1; then
    ok "build dependencies: $(grep '^deb-check: ' "$log/apt-deps.log" | sed 's/^deb-check: //')" \
        "(dpkg-checkbuilddeps: none unmet)"
else
    fail "build dependencies (apt-missing.sh, dpkg-checkbuilddeps)"
    show "$log/apt-deps.log"
    show "$log/checkbuilddeps.log"
fi

# ---- 2. the package ---------------------------------------------------------------------------
t0=$SECONDS
if make --no-print-directory deb >"$log/make-deb.log" 2>&1; then
    deb=$(find build/deb -maxdepth 1 -name 'wsrelay_*.deb' | head -n 1)
fi
deb_secs=$((SECONDS - t0))
if [ -n "${deb:-}" ] && [ -f "$deb" ]; then
    ok "make deb built $deb in $deb_secs s ($(du -k "$deb" | cut -f1) KiB;" \
        "$(dpkg-deb -f "$deb" Depends))"
else
    fail "make deb (log: $log/make-deb.log)"
    show "$log/make-deb.log" 30
    echo "deb-check: $passed passed, $((failed)) failed ($((SECONDS - start)) s): no package, stopping"
    exit 1
fi

# ---- 3. lintian -------------------------------------------------------------------------------
# --fail-on error: warnings are printed and judged by a person (docs/deploy.md lists those we
# accept), errors fail. Root runs it here because root runs this script; lintian only reads.
lintian --pedantic --fail-on error "$deb" >"$log/lintian.log" 2>&1
rc=$?
grep -v 'running with root privileges is not recommended' "$log/lintian.log" | sed 's/^/     | /'
if [ "$rc" = 0 ]; then
    ok "lintian --pedantic: no errors ($(grep -c '^E: ' "$log/lintian.log") E," \
        "$(grep -c '^W: ' "$log/lintian.log") W, $(grep -c '^[IPX]: ' "$log/lintian.log") I/P/X;" \
        "overridden tags: debian/wsrelay.lintian-overrides)"
else
    fail "lintian reports errors (status $rc)"
fi

# ---- 4. install -------------------------------------------------------------------------------
was_installed=no
if dpkg-query -W -f='${Status}' wsrelay 2>/dev/null | grep -q 'install ok installed'; then
    was_installed=yes
    echo "== note: wsrelay $(dpkg-query -W -f='${Version}' wsrelay) was installed before: it" \
        "will be upgraded, and left installed at the end"
fi
if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "./$deb" \
    >"$log/install.log" 2>&1 \
    && [ "$(dpkg-query -W -f='${Status} ${Version}' wsrelay)" = \
        "install ok installed $(dpkg-deb -f "$deb" Version)" ]; then
    ok "apt-get install ./$deb: wsrelay $(dpkg-query -W -f='${Version}' wsrelay) installed"
else
    fail "apt-get install ./$deb"
    show "$log/install.log"
fi

# ---- 5. systemd-analyze verify ----------------------------------------------------------------
unit=/lib/systemd/system/wsrelay.service
if ! cmp -s "$unit" debian/wsrelay.service; then
    fail "installed $unit differs from debian/wsrelay.service"
elif systemd-analyze verify "$unit" >"$log/verify.log" 2>&1 && [ ! -s "$log/verify.log" ]; then
    score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null |
        sed -n 's/.*Overall exposure level for wsrelay.service: \([0-9.]* [A-Z]*\).*/\1/p')
    ok "systemd-analyze verify $unit: clean; systemd-analyze security --offline=yes: $score"
else
    fail "systemd-analyze verify $unit"
    show "$log/verify.log"
fi

# ---- 6. the installed files -------------------------------------------------------------------
www=/usr/share/wsrelay/www
stale=""
variants=0
for v in "$www"/*.gz "$www"/*.br; do
    [ -e "$v" ] || continue
    variants=$((variants + 1))
    # the server serves a variant only if it is not older than its original (www.h)
    [ "$(stat -c %Y "$v")" -ge "$(stat -c %Y "${v%.*}")" ] || stale="$stale ${v##*/}"
done
man_path=$(man -w wsrelay 2>/dev/null)
if [ -x /usr/bin/wsrelay ] && [ -f "$www/index.html" ] && [ "$variants" -ge 2 ] \
    && [ -z "$stale" ] && [ "$man_path" = /usr/share/man/man1/wsrelay.1.gz ] \
    && grep -qx /etc/wsrelay/wsrelay.conf /var/lib/dpkg/info/wsrelay.conffiles \
    && [ "$(/usr/bin/wsrelay --version)" = "wsrelay $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')" ]; then
    ok "installed: /usr/bin/wsrelay ($(/usr/bin/wsrelay --version)), $www with $variants" \
        "variants none older than its original, conffile /etc/wsrelay/wsrelay.conf," \
        "man -w wsrelay = $man_path"
else
    fail "installed files: variants $variants (stale:${stale:- none}), man -w '$man_path'," \
        "version '$(/usr/bin/wsrelay --version 2>&1)'"
fi

# ---- 7, 8. the installed binary serves the installed page ------------------------------------
# As the unit runs it, with the package's config, but on a port the kernel picks (the log
# names it) and as uid 65534 (no root, as under DynamicUser): setpriv is util-linux's, which
# every Debian has.
setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/wsrelay --config /etc/wsrelay/wsrelay.conf --port 0 \
    </dev/null >"$log/server.log" 2>&1 &
srv_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.* port=\([0-9]*\) .*"listening".*/\1/p' "$log/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
done
listening=$(grep '"listening"' "$log/server.log" | head -n 1)
if [ -n "$port" ]; then
    base=http://127.0.0.1:$port
    plain=$(curl -s -o "$log/index.html" -w '%{http_code}' "$base/")
    gz=$(curl -s -H 'Accept-Encoding: gzip' -D "$log/gzip.headers" -o "$log/index.html.gz" \
        -w '%{http_code}' "$base/")
    encoding=$(sed -n 's/^[Cc]ontent-[Ee]ncoding: *\([^\r]*\).*/\1/p' "$log/gzip.headers")
    vary=$(sed -n 's/^[Vv]ary: *\([^\r]*\).*/\1/p' "$log/gzip.headers")
    health=$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")
    user=$(ps -o user= -p "$srv_pid" | tr -d ' ')
    case $listening in *"host=127.0.0.1 "*"www=$www "*) cfg_ok=yes ;; *) cfg_ok=no ;; esac
    if [ "$plain" = 200 ] && cmp -s "$log/index.html" "$www/index.html" \
        && [ "$gz" = 200 ] && [ "$encoding" = gzip ] && cmp -s "$log/index.html.gz" "$www/index.html.gz" \
        && [ "$vary" = Accept-Encoding ] && [ "$health" = 200 ] && [ "$cfg_ok" = yes ]; then
        ok "installed binary as $user on 127.0.0.1:$port (host and www from the conffile):" \
            "GET / = $www/index.html; Accept-Encoding: gzip = index.html.gz" \
            "(Content-Encoding: gzip, Vary: $vary); /healthz 200"
    else
        fail "installed binary on port $port: GET / $plain, gzip $gz ($encoding, Vary '$vary')," \
            "/healthz $health, log line: $listening"
        show "$log/server.log"
    fi
    kill -TERM "$srv_pid"
    t1=$SECONDS
    while kill -0 "$srv_pid" 2>/dev/null && [ $((SECONDS - t1)) -lt 10 ]; do
        sleep 0.1
    done
    wait "$srv_pid"
    rc=$?
    srv_pid=""
    if [ "$rc" = 0 ]; then
        ok "SIGTERM to PID: the installed server stopped, exit status 0, within $((SECONDS - t1)) s"
    else
        fail "SIGTERM to PID: exit status $rc"
        show "$log/server.log"
    fi
else
    fail "the installed binary did not log \"listening\""
    show "$log/server.log"
    fail "stop (not started)"
fi

# ---- 9. the service, where systemd runs the machine --------------------------------------------
if [ -d /run/systemd/system ] && [ "$(ps -o comm= -p 1)" = systemd ]; then
    systemctl restart wsrelay.service
    svc=$(curl -s -o "$log/svc.html" -w '%{http_code}' http://127.0.0.1:7071/)
    systemctl reload wsrelay.service
    if systemctl is-active -q wsrelay.service && [ "$svc" = 200 ] \
        && cmp -s "$log/svc.html" "$www/index.html"; then
        ok "systemctl: wsrelay.service active ($(systemctl show -p StatusText --value wsrelay))," \
            "GET :7071/ = index.html, reload ok;" \
            "systemd-analyze security: $(systemd-analyze security wsrelay.service 2>/dev/null |
                sed -n 's/.*Overall exposure level for wsrelay.service: \([0-9.]* [A-Z]*\).*/\1/p')"
    else
        fail "systemctl: wsrelay.service $(systemctl is-active wsrelay.service), GET :7071/ $svc"
        journalctl -u wsrelay.service -n 20 --no-pager | sed 's/^/     | /'
    fi
else
    skip "systemctl start wsrelay: systemd is not PID 1 here ($(ps -o comm= -p 1)); the" \
        "package's postinst enabled the unit but could not start it (make systemd-check does)"
fi

# ---- 10. remove -------------------------------------------------------------------------------
if [ "$was_installed" = yes ]; then
    skip "apt-get purge: wsrelay was installed before this ran; left installed"
elif DEBIAN_FRONTEND=noninteractive apt-get purge -y wsrelay >"$log/purge.log" 2>&1 \
    && ! dpkg-query -W -f='${Status}' wsrelay 2>/dev/null | grep -q 'installed' \
    && [ ! -e /usr/bin/wsrelay ] && [ ! -e /etc/wsrelay ] && [ ! -e "$unit" ] \
    && [ ! -e /usr/share/wsrelay ] \
    && [ -z "$(find /etc/systemd/system -name 'wsrelay.service' 2>/dev/null)" ]; then
    ok "apt-get purge -y wsrelay: binary, page, unit, its enablement and /etc/wsrelay gone"
else
    fail "apt-get purge -y wsrelay left something"
    show "$log/purge.log"
fi

echo "deb-check: $passed passed, $failed failed ($((SECONDS - start)) s; logs in $log/)"
[ "$failed" -eq 0 ]

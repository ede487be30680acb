#!/bin/sh
# Installs what `make test` needs on a fresh Debian 12 machine, and nothing that is already
# there: each package is checked with dpkg-query first, and apt-get runs only for the missing
# (scripts/apt-missing.sh).
# Then the Node test tools (package.json: playwright-core for the browser tests in test/e2e/,
# ws for the Node client of test/integration/test_node_ws.py)
# are installed with `npm ci`, only when node_modules is missing or older than the lock file.
set -eu
cd "$(dirname "$0")/.."

# chromium: Debian's browser, driven by playwright-core from /usr/bin/chromium (the e2e tests
# cannot use Playwright's own downloaded browsers). playwright-core talks to it over the
# DevTools protocol, so chromium-driver (ChromeDriver, for WebDriver) is not needed.
# openssl: the command, with which the TLS tests make their test CA and certificates.
# libnss3-tools: certutil, with which the browser tests' TLS pass makes chromium trust their
# test CA (an NSS database, as a person's browser holds an installed CA).
# nginx, haproxy: docs/deploy.md's TLS-terminating proxies, which test_tls_proxies.py runs in
# the foreground on free loopback ports (haproxy also fronts the cluster tests). The package's
# own nginx service, if the machine starts it, is left alone: the tests never use it.
# brotli: the command, for make's precompressed page and test_conditional.py's variants.
# mandoc: `make man-lint` (mandoc -Tlint docs/wsrelay.1), one of the static checks.
# fonts-dejavu-core: a font for the page's text in headless screenshots, named explicitly
# because chromium is installed without its recommended fonts.
# debhelper, lintian, dpkg-dev, systemd, curl, man-db: scripts/deb-check.sh, the Debian
# package's test (dpkg-buildpackage, lintian, systemd-analyze, fetching the page, man -w).
PACKAGES="
gcc make pkg-config clang libclang-rt-14-dev
clang-format clang-tidy cppcheck mandoc
libssl-dev libjsmn-dev libcmocka-dev libhiredis-dev libsystemd-dev
redis-server haproxy nginx openssl brotli
python3 python3-pytest python3-websockets
chromium libnss3-tools fonts-dejavu-core
debhelper lintian dpkg-dev systemd curl man-db
"

# Node.js and npm usually come with the machine (this project's machines carry a NodeSource
# build, which bundles npm): only if npm is missing altogether do we take Debian's.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi

# shellcheck disable=SC2086
scripts/apt-missing.sh deps $PACKAGES

# npm ci installs exactly what package-lock.json lists, and writes node_modules/.package-lock.json
# last: that file stands for a complete install. --ignore-scripts: nothing we use needs an
# install script (playwright-core has none; it never downloads a browser by itself; ws's
# optional native add-ons, bufferutil and utf-8-validate, are not installed).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "deps: npm ci (test tools from package-lock.json)"
    npm ci --ignore-scripts --no-audit --no-fund
    touch node_modules/.package-lock.json
else
    echo "deps: node_modules up to date"
fi

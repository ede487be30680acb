# wsrelay: the shared-cursors server in one C binary.
#
#   make            optimised build (-O2 -g) -> ./wsrelay, what users run and benchmark,
#                   and the page's precompressed files (www/*.gz, www/*.br: make precompress)
#   make run        build and start it on :7071
#   make test       install what is missing, then unit tests, a fuzz smoke run, the
#                   integration suite and the browser tests (test/e2e), against the
#                   normal and the ASan+UBSan build
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (60) (docs/fuzzing.md)
#   make asan       the sanitizer build -> build/asan/wsrelay
#   make headers    check every header compiles on its own
#   make fresh-check  as root: prove `git clone && make run` works on a fresh Debian 12
#                   (scripts/fresh-machine.sh, a debootstrap chroot; minutes, downloads)
#   make screenshots  the page with several cursors, in chromium -> docs/screenshot*.png
#   make bench-page   the page in a room of 300 moving clients -> docs/bench-page.json
#   make bench-static / bench-drain  files against nginx; reconnects with and without drain
#   make man-lint   mandoc -Tlint on the man page, docs/wsrelay.1
#   make install    PREFIX (/usr/local), DESTDIR: the binary, the page, the man page and a
#                   sample config; make uninstall removes exactly those
#   make deb        the Debian package -> build/deb/wsrelay_<version>_<arch>.deb (debian/)
#   make deb-check  as root: build it, lintian, systemd-analyze verify, install it, run the
#                   installed server, remove it (scripts/deb-check.sh)
#   make unit-check build and run the optimised build's unit tests (the package build does)
#   make fmt / fmt-check / lint / clean
#
# Linux only by design (epoll, signalfd, openat2). Libraries come through pkg-config.

CC       ?= cc
PKG_CONFIG ?= pkg-config
PREFIX   ?= /usr/local
DESTDIR  ?=

WARN     = -std=c11 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough
CPPFLAGS = -D_GNU_SOURCE -iquote include
OPT      = -O2 -g
SAN      = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SANLINK  = -fsanitize=address,undefined

# Flags from outside: Debian's dpkg-buildflags (debian/rules passes them) or a user's
# `make CFLAGS=...`. CFLAGS and LDFLAGS (from the environment or the command line) and
# EXTRA_CPPFLAGS (CPPFLAGS above is ours: -iquote include must stay) go to the optimised build,
# the one installed and packaged, after our own flags: they may add hardening
# (-D_FORTIFY_SOURCE=2, -fstack-protector-strong, -Wl,-z,relro -Wl,-z,now) but never drop
# -Werror. The sanitizer and fuzz builds and the checks keep only their own: _FORTIFY_SOURCE
# and ASan do not mix. Empty by default: a plain `make` builds as it always did.
CFLAGS   ?=
LDFLAGS  ?=
EXTRA_CPPFLAGS ?=

# OpenSSL ships libssl.pc and libcrypto.pc; jsmn is header-only and ships none (json.c includes <jsmn.h>).
# hiredis (issue 5's Redis backplane) ships hiredis.pc; libsystemd (sd_notify, notify.c:
# readiness for a Type=notify service) ships libsystemd.pc.
PKGS     = libssl libcrypto hiredis libsystemd
LIBS     = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo -lssl -lcrypto -lhiredis -lsystemd)
LIBS_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
TEST_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

MODULES  = $(filter-out main,$(basename $(notdir $(wildcard src/*.c))))
UNITS    = $(basename $(notdir $(wildcard test/unit/test_*.c)))
HEADERS  = $(wildcard include/*.h)

REL      = build/release
ASAN     = build/asan

.PHONY: all run test unit asan headers fmt fmt-check lint man-lint install uninstall clean deps \
        build-deps precompress
.DEFAULT_GOAL := all

all: wsrelay precompress

# ---- one set of rules per build variant ------------------------------------------------
# $(1) = build dir, $(2) = compile flags, $(3) = link flags
define variant
$(1)/%.o: src/%.c | build-deps
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) $$(WARN) $(2) $$(LIBS_CFLAGS) -MMD -MP -c $$< -o $$@

$(1)/unit/%.o: test/unit/%.c
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) -iquote test/unit $$(WARN) $(2) -MMD -MP -c $$< -o $$@

$(1)/libwsrelay.a: $(addprefix $(1)/,$(addsuffix .o,$(MODULES)))
	$$(AR) rcs $$@ $$^

$(1)/wsrelay: $(1)/main.o $(1)/libwsrelay.a
	$$(CC) $(3) $$^ $$(LIBS) -o $$@

$(1)/test_%: $(1)/unit/test_%.o $(1)/libwsrelay.a
	$$(CC) $(3) $$^ $$(TEST_LIBS) $$(LIBS) -o $$@

-include $$(wildcard $(1)/*.d $(1)/unit/*.d)
endef

$(eval $(call variant,$(REL),$(OPT) $(EXTRA_CPPFLAGS) $(CFLAGS),$(CFLAGS) $(LDFLAGS)))
$(eval $(call variant,$(ASAN),$(SAN),$(SANLINK)))

# Keep object files make considers intermediate: rebuilding them is the slow part.
.SECONDARY:

# Copy, then rename: a running ./wsrelay is replaced, not written into ("Text file busy").
wsrelay: $(REL)/wsrelay
	cp $< $@.tmp && mv -f $@.tmp $@

asan: $(ASAN)/wsrelay

unit: $(addprefix $(REL)/,$(UNITS)) $(addprefix $(ASAN)/,$(UNITS))

# The optimised build's unit tests, run one after the other; the first failure stops it. What
# the Debian package build runs (debian/rules, dh_auto_test): the pure modules' tests compiled
# with the package's flags, needing only libcmocka-dev, no network and no server.
.PHONY: unit-check
unit-check: $(addprefix $(REL)/,$(UNITS))
	@for t in $^; do $$t || exit 1; done

# RUN_ARGS: flags for the server, e.g. make run RUN_ARGS='--port 8080'
run: wsrelay precompress
	./wsrelay $(RUN_ARGS)

# ---- the page, precompressed (issue 14; docs/page.md, "How the page is served") -------------
# For each text file of www/ (html, js, css, svg), a gzip and a brotli copy beside it: the
# server sends one to a client whose Accept-Encoding takes it and never compresses on the fly.
# gzip -9 -n: no name or time in the header, so the bytes are reproducible; brotli -q 11: its
# best. Each is written to a temporary name and renamed, so a server running from www/ never
# sees half a file, and given its original's time (touch -r) to the nanosecond: the server
# ignores a variant older than its original (a stale one), and brotli copies the time only to
# the second. make remakes a variant when its original is newer, the same rule. Debian's gzip
# is essential; brotli comes with the build packages (scripts/build-deps.sh).
WWW_COMPRESSIBLE = $(wildcard www/*.html www/*.js www/*.css www/*.svg)
WWW_VARIANTS     = $(addsuffix .gz,$(WWW_COMPRESSIBLE)) $(addsuffix .br,$(WWW_COMPRESSIBLE))

precompress: $(WWW_VARIANTS)

www/%.gz: www/% | build-deps
	gzip -9 -n -c $< > $@.tmp && touch -r $< $@.tmp && mv -f $@.tmp $@

www/%.br: www/% | build-deps
	brotli -q 11 -f -o $@.tmp $< && touch -r $< $@.tmp && mv -f $@.tmp $@

# ---- the load generator: bench/wsbench (issue 4; `bench/wsbench --help`) -----------------
# One epoll thread driving many WebSocket clients. It links the server's pure codec modules
# (frame, utf8, upgrade) from the release library, so it is built with the same flags.
.PHONY: wsbench
wsbench: bench/wsbench

bench/wsbench: bench/wsbench.c $(REL)/libwsrelay.a $(HEADERS)
	$(CC) $(CPPFLAGS) $(WARN) $(OPT) $(LIBS_CFLAGS) $< $(REL)/libwsrelay.a $(LIBS) -lm -o $@

# `make test` is what CI runs (.ci/run) and what the README shows. It installs what a fresh
# Debian 12 machine lacks, builds both variants, then runs every suite; the last line it
# prints is "N passed, N failed".
test: deps
	$(MAKE) -j2 wsrelay precompress asan unit bench/wsbench
	scripts/test.sh

deps:
	scripts/deps.sh

# Before the first compile: the build's own packages (libjsmn-dev, libhiredis-dev, libssl-dev,
# pkg-config). As root with apt-get the missing ones are installed; otherwise the build stops
# with one line naming them and the command to install them. Silent when all are present.
# An order-only prerequisite of every object: it runs on each `make`, but never forces a
# rebuild by itself.
build-deps:
	@CC="$(CC)" PKG_CONFIG="$(PKG_CONFIG)" scripts/build-deps.sh

# The proof that the above works where it matters (issue 10): on a fresh Debian 12 root made
# by debootstrap (cached under build/fresh-machine/, a pristine copy each run), a user's
# `make` stops with the one line naming what is missing, root's `git clone && make run`
# installs exactly that and answers GET /, and a second build is silent and offline.
# Needs root (chroot, mounts) and takes minutes, downloading Debian packages: never part of
# `make test`. The last line is "fresh-machine: N passed, N failed (...)".
.PHONY: fresh-check
fresh-check:
	scripts/fresh-machine.sh

# The package's unit under a real systemd (issue 14): a minimal Debian 12 booted with
# systemd as PID 1 in systemd-nspawn, the package installed, then start, page, credentials,
# reload, security score, stop (scripts/systemd-check.sh). Root; downloads the first time.
.PHONY: systemd-check
systemd-check: deb
	scripts/systemd-check.sh

# Each header must compile alone: it includes what its declarations use, nothing more.
headers:
	@for h in $(HEADERS); do \
		echo "#include \"$$(basename $$h)\"" | \
		$(CC) $(CPPFLAGS) $(WARN) -fsyntax-only -x c - || exit 1; \
	done; echo "headers: $(words $(HEADERS)) compile on their own"

FMT_FILES = $(wildcard include/*.h src/*.c test/unit/*.c test/unit/*.h test/fuzz/*.c test/fuzz/*.h \
                     bench/*.c)
fmt:
	clang-format -i $(FMT_FILES)
fmt-check:
	clang-format --dry-run --Werror $(FMT_FILES)

lint:
	clang-tidy --quiet $(wildcard src/*.c) -- $(CPPFLAGS) -std=c11
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr -D_GNU_SOURCE -I include --suppress=missingIncludeSystem src

# The man page, in mdoc(7). mandoc exits non-zero on any style note, warning or error; it may
# also print that the machine's mandoc.db is outdated (about the system's pages that .Xr
# names, not about ours), which does not change its exit status.
man-lint:
	mandoc -Tlint docs/wsrelay.1

# What a package would put elsewhere: the sample config goes to PREFIX/share/doc/wsrelay/, not
# /etc (it is read only when --config names it; Debian packaging makes /etc/wsrelay/ a
# conffile). The man page is installed uncompressed; dh_compress gzips it in a package.
MAN1 = $(DESTDIR)$(PREFIX)/share/man/man1
DOC  = $(DESTDIR)$(PREFIX)/share/doc/wsrelay
WWW  = $(DESTDIR)$(PREFIX)/share/wsrelay/www

# install -p keeps the files' times: each variant keeps its original's (the server would
# take a variant older than its original as stale), and the ETags built from them stay the
# same across installs and across the nodes of a cluster.
install: wsrelay precompress
	install -d $(DESTDIR)$(PREFIX)/bin $(WWW) $(MAN1) $(DOC)
	install -m 0755 wsrelay $(DESTDIR)$(PREFIX)/bin/wsrelay
	install -p -m 0644 www/* $(WWW)/
	install -m 0644 docs/wsrelay.1 $(MAN1)/wsrelay.1
	install -m 0644 docs/wsrelay.conf $(DOC)/wsrelay.conf

# Exactly what install wrote, then our own directories if that left them empty; never the
# shared ones (bin, man1).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/wsrelay $(MAN1)/wsrelay.1 $(DOC)/wsrelay.conf \
		$(addprefix $(WWW)/,$(notdir $(wildcard www/*)))
	-rmdir $(WWW) $(DESTDIR)$(PREFIX)/share/wsrelay $(DOC) 2>/dev/null

# ---- the Debian package (debian/; docs/deploy.md, "Debian package and systemd") -----------
# dpkg-buildpackage builds in the directory it is given, writes its output to that
# directory's parent, and begins with `debian/rules clean`, which is `make clean`. So the
# package is built in a copy, build/deb/wsrelay/, of the files git tracks or would
# track (uncommitted edits included; ignored ones, like build/ and node_modules/, not): the
# working tree's builds and build/fresh-machine's cache survive, and the .deb, its -dbgsym
# .deb, the .buildinfo and the .changes land in build/deb/, not beside the repository. The
# copy is deleted after a successful build. Outside a git checkout the copy is every file
# but those same directories. Unsigned (-us -uc); binary only (-b): a source package would
# need an orig tarball (debian/source/format is 3.0 (quilt)).
DEB_DIR  = build/deb
DEB_SRC  = $(DEB_DIR)/wsrelay

.PHONY: deb deb-check
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_SRC)
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar --null --ignore-failed-read -T - -cf - | tar -C $(DEB_SRC) -xf -; \
	else \
		tar --exclude=./build --exclude=./.git --exclude=./node_modules \
			--exclude=./bench/peers/node_modules --exclude=./wsrelay -cf - . | \
			tar -C $(DEB_SRC) -xf -; \
	fi
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_SRC)
	@ls -1 $(DEB_DIR)

# On a Debian 12 machine, as root: the package's build dependencies (apt-missing.sh), make deb,
# lintian, systemd-analyze verify, apt-get install of the .deb, the installed server serving
# the installed page, and apt-get purge. Minutes the first time (packages to download).
deb-check:
	scripts/deb-check.sh

clean:
	rm -rf build wsrelay
	rm -f $(WWW_VARIANTS) $(addsuffix .tmp,$(WWW_VARIANTS))

# ---- fuzzing: libFuzzer targets in test/fuzz/ (docs/fuzzing.md) ------------------------
#   make fuzz          build, then run each target for FUZZ_SECONDS (60) on build/fuzz/corpus-*
#   make fuzz-smoke    the same for FUZZ_SMOKE_SECONDS (10): what scripts/test.sh runs
#   make fuzz-build    only build build/fuzz/fuzz_*
# Debian's clang (clang-14, libclang-rt-14-dev). The module sources are compiled again with
# the fuzzer's coverage instrumentation and ASan+UBSan into build/fuzz/obj/; only the pure
# modules the targets call are linked in (libfuzzmods.a: the linker takes what is used).
# Runs never write to the repository: test/fuzz/run.sh seeds a scratch corpus under build/.
FUZZ_CC       ?= clang
FUZZ_FLAGS     = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ          = build/fuzz
FUZZ_TARGETS  = $(basename $(notdir $(wildcard test/fuzz/fuzz_*.c)))
FUZZ_MODULES  = buf http www upgrade frame utf8 ws json presence cluster config target token cond \
                logjson

.PHONY: fuzz fuzz-smoke fuzz-build

$(FUZZ)/obj/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_FLAGS) $(LIBS_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ)/obj/fuzz/%.o: test/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -iquote test/fuzz $(WARN) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ)/libfuzzmods.a: $(addprefix $(FUZZ)/obj/src/,$(addsuffix .o,$(FUZZ_MODULES)))
	$(AR) rcs $@ $^

$(FUZZ)/fuzz_%: $(FUZZ)/obj/fuzz/fuzz_%.o $(FUZZ)/libfuzzmods.a
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ $(LIBS) -o $@

-include $(wildcard $(FUZZ)/obj/src/*.d $(FUZZ)/obj/fuzz/*.d)

fuzz-build: $(addprefix $(FUZZ)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	test/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# ---- the page's pictures: docs/screenshot*.png (test/e2e/screenshots.mjs, docs/page.md) ----
# Debian's chromium through playwright-core, as in the e2e tests. Not part of `make test`:
# colours are random, so every run gives new pictures to commit or not.
.PHONY: screenshots
screenshots: deps wsrelay
	node test/e2e/screenshots.mjs

# ---- benchmark: wsrelay against the Node ws demo and uWebSockets.js (issue 4) -----------
#   make bench                 installs what is missing (scripts/bench-deps.sh: gnuplot-nox,
#                              never part of `make test`), builds ./wsrelay and bench/wsbench,
#                              runs `npm ci` in bench/peers if node_modules is missing or older
#                              than the lock file, then bench/run.py (~30 min), which writes
#                              docs/benchmarks.md, docs/bench-*.png, docs/bench-results.json
#   BENCH_QUICK=1 make bench   a ~3-minute smoke run, written to build/bench-quick/ (other
#                              knobs: bench/run.py's header)
# npm ci writes node_modules/.package-lock.json last: it stands for a complete install.
BENCH_PEERS_STAMP = bench/peers/node_modules/.package-lock.json

.PHONY: bench bench-deps

bench: bench-deps
	$(MAKE) wsrelay bench/wsbench $(BENCH_PEERS_STAMP)
	/usr/bin/python3 bench/run.py

bench-deps:
	scripts/bench-deps.sh

# Issue 14's two side measures, each a few minutes, their tables pasted into
# docs/benchmarks.md: the page's files against nginx (wrk), and the reconnects a surviving
# node sees when another stops, with and without --drain-time (two nodes behind haproxy).
.PHONY: bench-static bench-drain
bench-static: bench-deps wsrelay
	/usr/bin/python3 bench/static_files.py
bench-drain: bench-deps wsrelay
	/usr/bin/python3 bench/drain_reconnects.py

# The page in a busy room (issue 12): headless chromium on the page while bench/wsbench
# moves 300 clients at 30 Hz, with batched frames and without (bench/page_bench.mjs, ~2 min;
# needs `npm ci` for playwright-core, as the e2e tests do). It saves docs/bench-page.json;
# `bench/run.py --report-only` then rewrites docs/benchmarks.md with it.
.PHONY: bench-page
bench-page: deps
	$(MAKE) wsrelay bench/wsbench
	node bench/page_bench.mjs --save docs/bench-page.json
	/usr/bin/python3 bench/run.py --report-only

$(BENCH_PEERS_STAMP): bench/peers/package.json bench/peers/package-lock.json
	cd bench/peers && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# boxd — the two commands a newcomer needs:
#   make run     install what is missing, build, start boxd (SQLite under ./var)
#   make check   the same plus test packages, then every test
#                (but the slow suite: `make check-extra`, which CI runs too)
# and for operators:
#   make install [PREFIX=/usr/local] [DESTDIR=...]   meson install underneath
#   make deb                                         build-deb/boxd_<version>_amd64.deb
BUILD     ?= build
BUILD_SAN ?= build-san
BENCH_BUILD ?= build-bench
STATE_DIR ?= $(CURDIR)/var
# make run CONFIG=etc/boxd.conf: a config file for the daemon.
CONFIG    ?=
MESON     ?= meson
PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
# More `meson setup` options for a new build dir, e.g. -Dtests=disabled.
MESON_OPTS ?=
DEB_DIR   ?= $(CURDIR)/build-deb

.PHONY: all build deps deps-test deps-deb run check check-extra check-unit check-san bench fuzz install deb clean

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

deps-deb:
	@scripts/deps.sh --deb

# Tests are built when cmocka is there (-Dtests=auto): `make` and `make run`
# need no test package.
$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --prefix=$(PREFIX) --sysconfdir=$(SYSCONFDIR) --localstatedir=$(LOCALSTATEDIR) $(MESON_OPTS) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

$(BUILD_SAN)/build.ninja:
	$(MESON) setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null

run: build
	@scripts/run.sh $(BUILD) $(STATE_DIR) $(CONFIG)

# A build dir first set up by `make` or `make run` (cmocka absent) has no
# tests: ask for them now that deps-test installed cmocka.
check: deps-test $(BUILD)/build.ninja $(BUILD_SAN)/build.ninja
	@$(MESON) configure $(BUILD) -Dtests=enabled
	@$(MESON) configure $(BUILD_SAN) -Dtests=enabled
	@ninja -C $(BUILD)
	@ninja -C $(BUILD_SAN)
	@scripts/check.sh $(BUILD) $(BUILD_SAN)

# The slow suite (meson suite 'extra': a second container engine, whole-box
# restores on every store, database clusters), kept out of `make check` so
# that stays under 30 minutes on 2 cores. .ci/run runs both.
check-extra: deps-test $(BUILD)/build.ninja
	@$(MESON) configure $(BUILD) -Dtests=enabled
	@ninja -C $(BUILD)
	@scripts/check.sh --extra $(BUILD)

# Installs boxctl, the first release under the install root with `current`
# pointing at it, bindir/boxd, /etc/boxd/boxd.conf (kept if present), the
# systemd unit, man pages, completions, the sftp image script.
install: build
	@$(MESON) configure $(BUILD) --prefix=$(PREFIX) --sysconfdir=$(SYSCONFDIR) --localstatedir=$(LOCALSTATEDIR)
	@DESTDIR="$(DESTDIR)" $(MESON) install -C $(BUILD) --quiet

# The Debian package, built by debhelper (dh + meson) from a copy of the
# tree in $(DEB_DIR); the .deb lands in $(DEB_DIR).
deb: deps-deb
	@scripts/build-deb.sh $(DEB_DIR)

# Benchmarks measure a release build of their own.
bench: deps-test
	@[ -f $(BENCH_BUILD)/build.ninja ] || $(MESON) setup $(BENCH_BUILD) --buildtype=release -Dtests=disabled >/dev/null
	@ninja -C $(BENCH_BUILD)
	@scripts/bench.sh $(BENCH_BUILD)

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(DEB_DIR)

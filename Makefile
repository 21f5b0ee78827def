# boxd — the two commands a newcomer needs:
#   make run     install what is missing, build, start boxd (SQLite under ./var)
#   make check   the same plus test packages, then every test
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

.PHONY: all build deps deps-test run check check-unit check-san bench fuzz clean

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

# Tests are built when cmocka is there (-Dtests=auto): `make` and `make run`
# need no test package.
$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --prefix=$(PREFIX) --sysconfdir=$(SYSCONFDIR) --localstatedir=$(LOCALSTATEDIR) >/dev/null

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

# Benchmarks measure a release build of their own.
bench: deps-test
	@[ -f $(BENCH_BUILD)/build.ninja ] || $(MESON) setup $(BENCH_BUILD) --buildtype=release -Dtests=disabled >/dev/null
	@ninja -C $(BENCH_BUILD)
	@scripts/bench.sh $(BENCH_BUILD)

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

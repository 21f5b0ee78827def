# boxd — the two commands a newcomer needs:
#   make run     install what is missing, build, start boxd (SQLite under ./var)
#   make check   the same plus test packages, then every test
BUILD     ?= build
BUILD_SAN ?= build-san
BENCH_BUILD ?= build-bench
STATE_DIR ?= $(CURDIR)/var
MESON     ?= meson

.PHONY: all build deps deps-test run check check-unit check-san bench fuzz clean

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

$(BUILD_SAN)/build.ninja:
	$(MESON) setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null

run: build
	@mkdir -p $(STATE_DIR)
	@echo "boxd: state dir $(STATE_DIR) (SQLite: $(STATE_DIR)/boxd.db)"
	@scripts/run.sh $(BUILD) $(STATE_DIR)

check: deps-test build $(BUILD_SAN)/build.ninja
	@ninja -C $(BUILD_SAN)
	@scripts/check.sh $(BUILD) $(BUILD_SAN)

# Benchmarks measure a release build of their own.
bench: deps-test
	@[ -f $(BENCH_BUILD)/build.ninja ] || $(MESON) setup $(BENCH_BUILD) --buildtype=release -Dtests=false >/dev/null
	@ninja -C $(BENCH_BUILD)
	@scripts/bench.sh $(BENCH_BUILD)

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

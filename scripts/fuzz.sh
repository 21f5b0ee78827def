#!/usr/bin/env bash
# fuzz.sh [SECONDS] — fuzz every target in tests/fuzz with clang's libFuzzer
# (+ASan/UBSan) for SECONDS each (default 60), starting from the seed corpus.
# FUZZ_TARGETS="api engine" picks some of them.
# New interesting inputs are kept in build-fuzz/corpus/<target>; a crash
# leaves its input in build-fuzz/ — copy it into tests/fuzz/corpus/<target>
# once fixed, so `make check` replays it for ever.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
command -v clang >/dev/null || { echo "fuzz.sh: needs clang (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
out=$root/build-fuzz
mkdir -p "$out"
# The library code, without any main(): everything under src/ except the
# programs (and the layer-check program).
mapfile -t srcs < <(find "$root/src" -name '*.c' ! -path '*/daemon/*' ! -path '*/cli/*' ! -name layer_check.c | sort)
# The dashboard's files as C arrays, as meson makes them (web/meson.build).
mapfile -t web_files < <(find "$root/web" -type f ! -name meson.build | sort)
python3 "$root/scripts/web-embed.py" "$out/web_assets.c" "$root/web" "${web_files[@]}"
srcs+=("$out/web_assets.c")
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DBOXD_VERSION=\"fuzz\"
	-DBOXD_INSTALL_ROOT=\"/opt/boxd\" -I"$root/src"
	$(pkg-config --cflags --libs libuv libmicrohttpd jansson sqlite3 libmariadb libpq libcurl libarchive libcrypto inih libssh libsystemd))
for t in ${FUZZ_TARGETS:-lock-doc config engine api mysql-dsn}; do
	echo "== fuzz-$t (${secs}s)"
	clang "${flags[@]:0:7}" "$root/tests/fuzz/fuzz-$t.c" "${srcs[@]}" "${flags[@]:7}" -lpthread -o "$out/fuzz-$t"
	mkdir -p "$out/corpus/$t"
	(cd "$out" && "./fuzz-$t" -max_total_time="$secs" "corpus/$t" "$root/tests/fuzz/corpus/$t")
done

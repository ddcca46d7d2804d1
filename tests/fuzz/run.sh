#!/bin/sh
# Builds every libFuzzer target with clang, ASan and UBSan, and runs each for
# SECONDS (default 60) on a copy of its seed corpus. Findings are written to
# fuzz-out/<target>/ and make the script fail.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
build=build-fuzz

if [ ! -f "$build/build.ninja" ]; then
	CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DPUSHMAIL_FUZZ=ON -DPUSHMAIL_SANITIZE=ON >/dev/null
fi
targets=${*:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
# shellcheck disable=SC2086
ninja -C "$build" $targets >/dev/null

status=0
for t in $targets; do
	out=fuzz-out/$t
	mkdir -p "$out/corpus"
	cp -n tests/fuzz/corpus/"$t"/* "$out/corpus/" 2>/dev/null || true
	if "$build/$t" -max_total_time="$seconds" -max_len=65536 \
		-artifact_prefix="$out/" -print_final_stats=1 \
		"$out/corpus" >"$out/log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
		echo "fuzz $t: ${runs:-?} runs, no finding"
	else
		echo "fuzz $t: FINDING, see $out/log"
		tail -30 "$out/log"
		status=1
	fi
done
exit $status

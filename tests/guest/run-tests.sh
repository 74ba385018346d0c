#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM, once per `make test`: sets up the hardware, runs the KUnit module
# and every integration test, and leaves the results in $MPW_OUT for tests/check-results.py:
#   integration.tap  ok/not ok per test, with the expected/saw diagnostics of failures
#   kmemleak.txt     kmemleak's report after the tests (empty when nothing leaked)
# (vm-wrapper.sh saves the kernel log, which holds the KTAP of the KUnit suites.)

set -u
root="$MPW_ROOT"
out="$MPW_OUT"
. "$root/tests/guest/lib.sh"
export MPW_CLIENT="$root/tests/client/target/release/mpw-vfio-client"

tap="$out/integration.tap"
: > "$tap"
n=0
record() { # RESULT NAME DIAG_FILE
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2" >> "$tap"
		echo "[test] ok $n $2"
	else
		echo "not ok $n $2" >> "$tap"
		sed 's/^/    /' "$3" >> "$tap"
		echo "[test] not ok $n $2"
		cat "$3"
	fi
}

kmemleak=/sys/kernel/debug/kmemleak
if [ -w "$kmemleak" ]; then
	# Forget what boot left behind: only leaks from here on count.
	echo scan > "$kmemleak"; echo clear > "$kmemleak"
fi

diag="$(mktemp)"
if bash "$root/tests/guest/setup-hw.sh" > "$diag" 2>&1; then
	cat "$diag"; record 0 setup_hw "$diag"
else
	record 1 setup_hw "$diag"
fi
[ -f "$MPW_HW_ENV" ] && . "$MPW_HW_ENV"

# KUnit: the suites run while the module loads; keep the module until after the results
# are in the log, then check that it unloads cleanly.
if bash "$root/tests/guest/load-modules.sh" --kunit > "$diag" 2>&1; then
	record 0 load_modules "$diag"
else
	record 1 load_modules "$diag"
fi
if rmmod mdev_pci_wrap_kunit > "$diag" 2>&1; then
	record 0 unload_kunit_module "$diag"
else
	record 1 unload_kunit_module "$diag"
fi

for f in "$root"/tests/integration/*.sh; do
	for t in $(sed -n 's/^\(test_[a-z0-9_]*\)() {$/\1/p' "$f"); do
		echo "[test] running $t ($(basename "$f"))"
		(set +eu; . "$f"; "$t") > "$diag" 2>&1
		record $? "$t" "$diag"
	done
done

# Unloading is part of the test: the vendor modules, then the library, must let go of
# everything.
unload_all() {
	local ko
	for ko in "$root"/*.ko; do
		case "$(basename "$ko" .ko)" in
		mdev_pci_wrap | mdev_pci_wrap_kunit) ;;
		*) rmmod "$(basename "$ko" .ko)" || return 1 ;;
		esac
	done
	rmmod mdev_pci_wrap
}
if unload_all > "$diag" 2>&1; then
	record 0 unload_modules "$diag"
else
	record 1 unload_modules "$diag"
fi

if [ -w "$kmemleak" ]; then
	echo "[test] kmemleak scan"
	echo scan > "$kmemleak"; sleep 6; echo scan > "$kmemleak"
	cat "$kmemleak" > "$out/kmemleak.txt"
else
	echo "kmemleak not available" > "$out/kmemleak.txt"
fi
rm -f "$diag"
echo "[test] $n integration results in $tap"

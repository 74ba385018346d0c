#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM, for `make stress` (scripts/stress.sh): hardware setup, modules, the
# lifecycle rounds and the fuzzer, each recorded as a result in $MPW_OUT/integration.tap for
# tests/check_results.py, and a kmemleak scan at the end.

set -u
root="$MPW_ROOT"
out="$MPW_OUT"
. "$root/tests/guest/lib.sh"
export MPW_CLIENT="$root/tests/client/target/release/mpw-vfio-client"
tap="$out/integration.tap"
: > "$tap"
printf '%s\n' setup_hw load_modules lifecycle fuzz unload_modules > "$out/expected-tests.txt"
record() { # RESULT NAME LOG
	tap_record "$tap" stress "$@"
}
kmemleak_forget
log="$(mktemp)"
# A stalled root file system is reported within a minute or so (lib.sh), and the host stops the VM.
stall_watch > /dev/null 2>&1 &
watcher=$!

bash "$root/tests/guest/setup-hw.sh" > "$log" 2>&1; record $? setup_hw "$log"
. "$MPW_HW_ENV"
# (With the KUnit module: its suites run at load; the summary counts them too.)
bash "$root/tests/guest/load-modules.sh" --kunit > "$log" 2>&1; record $? load_modules "$log"

bash "$root/tests/stress/lifecycle.sh" "${MPW_STRESS_ROUNDS:-1000}" 2>&1 | tee "$log"
record "${PIPESTATUS[0]}" lifecycle "$log"

vf="${NVME_VFS[1]}"
rc=0
if dev="$(mdev_on "$vf")"; then
	# (nvme-identify, too, makes the controller DMA to an IOVA it unmapped.)
	expect_splats_begin dmar-fault
	"$MPW_CLIENT" fuzz "$dev" "${MPW_FUZZ_OPS:-1000000}" "${MPW_FUZZ_SEED:-1}" > "$log" 2>&1 || rc=$?
	cat "$log"
	id="$("$MPW_CLIENT" nvme-identify "$dev" 2>&1)" || rc=$?
	expect_splats_end dmar-fault
	echo "$id" >> "$log"
	[ "$(kv identify_status "$id")" = 0x0 ] || rc=1
	echo "[stress] Identify by DMA after the fuzzing: $(kv identify_status "$id")"
else
	rc=1
fi
mdev_off "${dev:-}" "$vf"
record $rc fuzz "$log"

bash "$root/tests/guest/load-modules.sh" --unload > "$log" 2>&1; record $? unload_modules "$log"
kmemleak_report "$out/kmemleak.txt"
kill "$watcher" 2>/dev/null
rm -f "$log"
touch "$out/run-tests.done"

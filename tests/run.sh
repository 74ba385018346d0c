#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make test`: everything, from a fresh machine. Installs the dependencies, builds (or reuses)
# the test kernel, builds the modules and the userspace client, runs the static checks and the
# harness self-tests on the host, then boots the test VM once and runs the KUnit suites and
# every integration test inside it. Ends with `N passed, N failed`; exits non-zero on any
# failure, missing result or kernel splat.

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
start=$(date +%s)
say() { printf '[test %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
abort() { say "$*"; echo "0 passed, 1 failed"; exit 1; }

say "dependencies"
make -s -C "$root" deps || abort "installing dependencies failed"
say "test kernel"
make -s -C "$root" kernel || abort "building the test kernel failed"

# Static checks: each one is a test.
static_pass=0 static_fail=0
static() { # NAME CMD...
	local name="$1" log="$root/out/static-$1.log"
	shift
	if "$@" > "$log" 2>&1; then
		static_pass=$((static_pass + 1)); say "ok $name: $(tail -1 "$log")"
	else
		static_fail=$((static_fail + 1)); say "FAIL $name:"; tail -40 "$log"
	fi
}
mkdir -p "$root/out"
static fmt-check make -s -C "$root" fmt-check
static clippy make -s -C "$root" clippy
# Clippy's objects are not for running: rebuild with rustc.
find "$root/lib" "$root/vendors" "$root/kunit" -name '*.o' -delete 2>/dev/null
say "modules and client"
make -s -C "$root" modules > "$root/out/build.log" 2>&1 ||
	{ tail -40 "$root/out/build.log"; abort "building the modules failed"; }
make -s -C "$root" client > "$root/out/client.log" 2>&1 ||
	{ tail -40 "$root/out/client.log"; abort "building the client failed"; }
# make install/uninstall into a scratch root, and dkms.conf as a distribution uses it (a
# private mount namespace: the host is not touched).
static install bash "$here/host/install.sh"
static dkms bash "$here/host/dkms.sh"
# The user guide's host kernel: Debian's config + kernel/host.config (configured, not built).
static host-kernel bash "$here/host/host-kernel.sh"
# The user guide's package lists are the installer's.
static guide bash "$here/host/guide.sh"

say "harness self-tests"
hlog="$root/out/harness.log"
python3 -m unittest discover -s "$here/harness" > "$hlog" 2>&1
h_total=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$hlog")
h_fail=$(( $(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$hlog" | head -1 || true) + 0 ))
h_err=$(( $(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$hlog" | head -1 || true) + 0 ))
h_fail=$((h_fail + h_err))
[ -n "$h_total" ] || { cat "$hlog"; abort "harness self-tests did not run"; }
[ $h_fail = 0 ] || cat "$hlog"

# shellcheck source=scripts/vm.sh
. "$root/scripts/vm.sh"
out="$root/out/test"
# What the guest runs; MPW_TESTS_GLOB (some integration files only), MPW_FAKE_STALL,
# MPW_FAKE_DEATH and MPW_KMEMLEAK_LATE (see tests/guest/run-tests.sh) are passed on.
guest_cmd="bash tests/guest/run-tests.sh"
for v in MPW_TESTS_GLOB MPW_FAKE_STALL MPW_FAKE_DEATH MPW_KMEMLEAK_LATE; do
	[ -n "${!v:-}" ] && guest_cmd="$v=$(printf '%q' "${!v}") $guest_cmd"
done
rm -rf "$out" "$out".stalled* "$out".earlier*
mkdir -p "$out"
# libvirt's cache of QEMU's capabilities (tests/integration/62-libvirt.sh): probing them takes
# minutes under TCG. Kept in $MPW_CACHE between runs, handed to each VM in its output
# directory and taken back after it; libvirt itself checks that they are still valid.
lv_caps="$MPW_CACHE/libvirt-caps"
caps_in() { # OUT
	mkdir -p "$1/libvirt-caps"
	cp "$lv_caps"/*.xml "$1/libvirt-caps/" 2> /dev/null || true
}
caps_out() { # OUT
	compgen -G "$1/libvirt-caps/*.xml" > /dev/null || return 0
	mkdir -p "$lv_caps"
	cp "$1"/libvirt-caps/*.xml "$lv_caps/"
}
caps_in "$out"
say "booting the test VM (debug kernel under TCG: about a minute to boot); output follows"
mpw_vm_follow "$out"
vm_rc=0
mpw_vm_run "$out" "${MPW_TEST_TIMEOUT:-3600}" "$guest_cmd" || vm_rc=$?
# A guest that stalled (scripts/vm.sh's watchdog, or the guest saying it cannot start
# programs; see docs/test-vm.md, "The guest stall"), or a VM that ended in the middle of the
# run without a word from the guest (scripts/vm.sh's died.txt: how QEMU ended), gets a fresh
# VM that resumes the run: the tests the first VM finished keep their results (the one it
# stopped in runs again), the others run in the fresh VM. Up to MPW_STALL_RETRIES (2) times,
# while the run is not past MPW_STALL_RETRY_BEFORE seconds (CI's limit). Each is reported, and
# the earlier VMs' kernel logs are judged too (check_results.py): a panic in one fails the run.
retries=0
: > "$root/out/earlier-runs.txt"
while { [ -f "$out/stalled.txt" ] || [ -f "$out/died.txt" ]; } &&
	[ $retries -lt "${MPW_STALL_RETRIES:-2}" ] &&
	[ $(( $(date +%s) - start )) -lt "${MPW_STALL_RETRY_BEFORE:-2700}" ]; do
	retries=$((retries + 1))
	earlier="$out.earlier$retries"
	why="$(cat "$out/stalled.txt" "$out/died.txt" 2>/dev/null)"
	rm -rf "$earlier"
	mpw_vm_unfollow
	mv "$out" "$earlier"
	mkdir -p "$out"
	mpw_vm_follow "$out"
	# The earlier run's test results, but the test it stopped in (check_results.py).
	python3 "$here/check_results.py" --resume "$earlier/integration.tap" > "$out/resume.tap" ||
		: > "$out/resume.tap"
	say "WARNING $why; its output is kept in $earlier; resuming in a fresh VM" \
		"($(grep -c '^ok\|^not ok' "$out/resume.tap") results kept)"
	echo "$earlier" >> "$root/out/earlier-runs.txt"
	caps_out "$earlier"
	caps_in "$out"
	vm_rc=0
	mpw_vm_run "$out" "${MPW_TEST_TIMEOUT:-3600}" "$guest_cmd" || vm_rc=$?
	echo "the VM stalled or ended early $retries time(s); resumed in a fresh VM each time:" \
		"$(paste -sd' ' "$root/out/earlier-runs.txt")" > "$out/earlier-stall.txt"
done
sleep 1
mpw_vm_unfollow
caps_out "$out"
# Say what the status means: the guest-side run records its results as it goes and writes
# run-tests.done last, so an early end leaves partial results, not a missing report.
if [ -f "$out/run-tests.done" ]; then
	say "VM run finished (status $vm_rc); console log: $out/console.log"
elif [ $vm_rc = 124 ]; then
	say "the VM run timed out or stalled (the guest hung?);" \
		"console log: $out/console.log, kernel log so far: $out/kmsg.txt"
elif [ $vm_rc = 125 ]; then
	say "the VM ended before the guest's run did (status 125): $(cat "$out/died.txt" 2>/dev/null);" \
		"console log: $out/console.log"
else
	say "the guest run ended early with status $vm_rc: run-tests.sh stopped before its end;" \
		"its output: $out/cmd.out, console log: $out/console.log"
fi

[ -f "$out/earlier-stall.txt" ] && say "WARNING $(cat "$out/earlier-stall.txt")"
say "results (whole run: $(( $(date +%s) - start ))s)"
# Its last line is the summary: `N passed, N failed`.
python3 "$here/check_results.py" "$out" --earlier="$root/out/earlier-runs.txt" \
	"static=$static_pass/$static_fail" "harness=$((h_total - h_fail))/$h_fail"

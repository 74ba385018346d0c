#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM, once per `make test`: sets up the hardware, runs the KUnit module
# and every integration test, and leaves the results in $MPW_OUT for tests/check_results.py:
#   expected-tests.txt  every result this run is to record, written before anything runs:
#                       a result that never comes is a failure
#   integration.tap     ok/not ok per test, with the expected/saw diagnostics of failures
#   kmemleak.txt        kmemleak's report after the tests (empty when nothing leaked); with
#                       MPW_KMEMLEAK_LATE=1, the tests of files marked
#                       `# mpw-kmemleak: off` run after it (below)
#   steps/NAME.out      each step's output (a passing test's too)
#   run-tests.done      written last: without it, the run ended early
# (vm-wrapper.sh saves the kernel log, which holds the KTAP of the KUnit suites.)
#
# Each test function runs in its own process group under a time limit, MPW_TEST_STEP_TIMEOUT
# seconds (default 300; a test file may ask for more for its tests with a line
# `# mpw-test-limit: SECONDS`, below the host's 480 s stall watchdog: the libvirt tests, which
# start QEMU through libvirt under TCG); the harness's own steps (hardware setup, module loading with the
# KUnit suites, unloading, kmemleak scan) under MPW_HARNESS_STEP_TIMEOUT (default 900). On a
# time-out the blocked tasks and the kernel log's tail go into the test's diagnostics, the
# test is killed (or abandoned if it is stuck in the kernel) and the run goes on.
# MPW_TESTS_GLOB selects the integration files (default tests/integration/*.sh).
# MPW_FAKE_STALL=TEST makes the first VM stall (as far as the host can tell) when TEST is
# due, MPW_FAKE_DEATH=TEST makes it reset at once (sysrq b: QEMU, with -no-reboot, ends):
# the harness's tests of tests/run.sh's resumption in a fresh VM.

set -u
root="$MPW_ROOT"
out="$MPW_OUT"
# shellcheck source=tests/guest/lib.sh
. "$root/tests/guest/lib.sh"
export MPW_CLIENT="$root/tests/client/target/release/mpw-vfio-client"

test_limit="${MPW_TEST_STEP_TIMEOUT:-300}"
harness_limit="${MPW_HARNESS_STEP_TIMEOUT:-900}"
tests_glob="${MPW_TESTS_GLOB:-$root/tests/integration/*.sh}"

tap="$out/integration.tap"
expected="$out/expected-tests.txt"
rm -f "$out/run-tests.done"
: > "$tap"
tmpd="$(mktemp -d)"
n=0
mkdir -p "$out/steps"
record() { # RESULT NAME DIAG_FILE...
	local rc="$1" name="$2"
	shift 2
	n=$((n + 1))
	# Every step's whole output, passed or not, for reading afterwards.
	cat "$@" > "$out/steps/$name.out" 2>/dev/null
	if [ "$rc" = 0 ]; then
		echo "ok $n $name" >> "$tap"
		echo "[test] ok $n $name"
	else
		echo "not ok $n $name" >> "$tap"
		cat "$@" 2>/dev/null | sed 's/^/    /' >> "$tap"
		echo "[test] not ok $n $name"
		cat "$@" 2>/dev/null
	fi
}

# step NAME LIMIT CMD...: runs the program CMD as its own process group (setsid), for at most
# LIMIT seconds, and records its result as NAME. Its output is in $step_out. The kernel log
# (and the console) get `mpw-test: begin/end NAME` markers: they show which step a kernel
# message came from, and the end closes the splat expectations a test opened.
step() {
	local name="$1" limit="$2" pid
	shift 2
	step_out="$tmpd/$n.out"
	echo "mpw-test: begin $name" > /dev/kmsg
	setsid "$@" < /dev/null > "$step_out" 2>&1 &
	pid=$!
	if wait_limited "$limit" "$pid"; then
		echo "mpw-test: end $name" > /dev/kmsg
		record "$job_rc" "$name" "$step_out"
		return "$job_rc"
	fi
	# The step may still write to $step_out: the verdict goes to a file of its own.
	{
		echo "# $name: timed out after $limit s; it was stopped here"
		hang_evidence "$pid" || stuck=1
		stop_job "$pid"
	} > "$step_out.limit" 2>&1
	echo "mpw-test: end $name" > /dev/kmsg
	echo "[test] $name timed out after $limit s"
	record 1 "$name" "$step_out" "$step_out.limit"
	if [ -n "${stuck:-}" ]; then
		# Nothing more can run: every later step would time out the same way.
		echo "[test] the guest cannot start programs any more; the run stops here"
		exit 3
	fi
	return 124
}

# --- Which tests there are -------------------------------------------------------------
# Test functions in file order: `test_x() {`, `test_x () {`, `function test_x {` and
# `function test_x() {` (the brace may be on the next line). bash itself then says which
# test_* functions each file defines: one the pattern missed is run anyway and also reported
# as a failure, so that a test cannot silently drop out of the run.
list_tests() { # FILE
	local s='[[:space:]]*' name='(test_[A-Za-z0-9_]+)' parens='\([[:space:]]*\)'
	sed -nE -e "s/^${s}function[[:space:]]+$name$s($parens)?$s(\{.*)?\$/\1/p" \
		-e "s/^$s$name$s$parens$s(\{.*)?\$/\1/p" "$1"
}
defined_tests() { # FILE
	# shellcheck disable=SC1090
	(set +eu; . "$1" > /dev/null 2>&1; declare -F) | sed -n 's/^declare -f[a-z]* \(test_.*\)$/\1/p'
}

# discover: every test of every file, in file order, as `test<TAB>FILE<TAB>NAME` lines, and a
# file's problems as `parse<TAB>NAME<TAB>DIAGNOSTICS_FILE` lines (recorded as failures of
# their own, parse_<file>). It runs beside the hardware setup: under TCG the programs it
# starts take about a minute.
discover() {
	local f base found missed t limit
	# shellcheck disable=SC2086 # the glob is to expand
	for f in $tests_glob; do
		[ -f "$f" ] || continue
		base="${f##*/}"
		if ! bash -n "$f" > "$tmpd/parse.$base" 2>&1; then
			sed -i "1i # $base does not parse:" "$tmpd/parse.$base"
			printf 'parse\t%s\t%s\n' "parse_${base%.sh}" "$tmpd/parse.$base"
		fi
		found="$(list_tests "$f")"
		missed=""
		for t in $(defined_tests "$f"); do
			[[ $'\n'$found$'\n' == *$'\n'$t$'\n'* ]] || missed="$missed $t"
		done
		if [ -n "$missed" ]; then
			printf '# %s defines test functions in a form the harness does not recognize:%s\n%s\n' \
				"$base" "$missed" "#   write them as \`test_name() {\`; they were run anyway, last" \
				> "$tmpd/missed.$base"
			printf 'parse\t%s\t%s\n' "parse_${base%.sh}" "$tmpd/missed.$base"
		fi
		for t in $found $missed; do
			printf 'test\t%s\t%s\n' "$f" "$t"
		done
		limit="$(sed -n 's/^# mpw-test-limit: \([0-9][0-9]*\)$/\1/p' "$f" | head -1)"
		[ -z "$limit" ] || printf 'limit\t%s\t%s\n' "$f" "$limit"
		[ "${MPW_KMEMLEAK_LATE:-0}" = 1 ] && grep -qx '# mpw-kmemleak: off' "$f" &&
			printf 'late\t%s\t-\n' "$f"
	done
}

# --- The run ---------------------------------------------------------------------------
# Where the guest's CPU time goes (guest-cpu.txt, at the end): /proc/stat now and then.
read -r -a cpu_start < /proc/stat
# Forget what boot left behind: only leaks from here on count. (A scan takes about a minute
# under TCG: it runs beside the hardware setup, and ends before the modules load.)
kmemleak_forget &
kmemleak_forgetting=$!

# A stalled root file system is seen within a minute or so, whatever runs (lib.sh).
stall_watch > /dev/null 2>&1 &
watcher=$!

discover > "$tmpd/discovered" 2>&1 &
discovering=$!
# `make install` of the modules runs beside the hardware setup too (a minute or more under
# TCG); the load_modules step prints its output, and installs again if it failed.
install_log="$tmpd/install.out"
setsid bash "$root/tests/guest/load-modules.sh" --install < /dev/null > "$install_log" 2>&1 &
installing=$!
step setup_hw "$harness_limit" bash "$root/tests/guest/setup-hw.sh" && cat "$step_out"
if ! wait_limited "$harness_limit" "$discovering"; then
	echo "# finding the tests did not end in $harness_limit s: the list is incomplete" \
		> "$tmpd/discovery.limit"
	stop_job "$discovering" >> "$tmpd/discovery.limit"
	record 1 find_tests "$tmpd/discovery.limit"
fi
# The tests in file order, every one judged by kmemleak. With MPW_KMEMLEAK_LATE=1 (a faster
# run, for when the time budget is tight), in two phases: first those of the files not marked
# `# mpw-kmemleak: off`, in file order, then kmemleak's report and kmemleak turned off, then
# those of the marked files. kmemleak records every allocation with its stack: under TCG it
# makes each program start about 2.5 times slower, and the marked files are mostly the users'
# tools (QEMU, libvirt, mdevctl), which start hundreds of programs; the kernel paths they
# reach (the legacy group and container, the iommufd compatibility container, open, DMA,
# MSI-X, close) are also the other files', which kmemleak judges. kmemleak cannot be turned
# on again, so they run last (session 10: 14 min 42 s against 18 min 46 s for make test).
file_of=() tests=() late_file_of=() late_tests=()
declare -A file_limit=() late=()
while IFS=$'\t' read -r kind a b; do
	case "$kind" in
	parse) record 1 "$a" "$b" ;;
	test) tests+=("$b") file_of+=("$a") ;;
	limit) file_limit[$a]="$b" ;;
	late) late[$a]=1 ;;
	*) echo "[test] finding the tests: $kind $a $b" ;;
	esac
done < "$tmpd/discovered"
[ ${#tests[@]} -gt 0 ] || echo "[test] no integration tests in the files matching $tests_glob"
i=0 n_early=0
while [ $i -lt ${#tests[@]} ]; do
	if [ -n "${late[${file_of[$i]}]:-}" ]; then
		late_tests+=("${tests[$i]}") late_file_of+=("${file_of[$i]}")
	else
		tests[n_early]="${tests[$i]}" file_of[n_early]="${file_of[$i]}"
		n_early=$((n_early + 1))
	fi
	i=$((i + 1))
done
tests=("${tests[@]:0:n_early}" "${late_tests[@]}")
file_of=("${file_of[@]:0:n_early}" "${late_file_of[@]}")
{
	echo "# Every result this run records; check_results.py counts a missing one as failed."
	echo setup_hw
	echo load_modules
	echo unload_kunit_module
	printf '%s\n' "${tests[@]}"
	echo unload_modules
} > "$expected"
if ! wait_limited "$harness_limit" "$kmemleak_forgetting"; then
	echo "[test] the first kmemleak scan did not end in $harness_limit s"
fi

if ! wait_limited "$harness_limit" "$installing"; then
	echo "# make install did not end in $harness_limit s" >> "$install_log"
	stop_job "$installing" >> "$install_log"
fi
# KUnit: the suites run while the module loads; keep the module until after the results
# are in the log, then check that it unloads cleanly.
# shellcheck disable=SC2016 # expanded by that bash
step load_modules "$harness_limit" bash -c \
	'echo "the install run beside setup_hw:"; sed "s/^/  /" "$1"; exec bash "$2" --kunit' \
	mpw-load "$install_log" "$root/tests/guest/load-modules.sh"
step unload_kunit_module "$harness_limit" rmmod mdev_pci_wrap_kunit

# A run resumed after a stalled VM (tests/run.sh): the tests the stalled VM finished keep its
# results (resume.tap, in TAP with their diagnostics); the others run here. Read once, with
# builtins: each earlier result's status in resumed_rc, its diagnostics in
# $tmpd/resumed.NAME.
resume="$out/resume.tap"
declare -A resumed_rc=()
if [ -f "$resume" ]; then
	cur=""
	while IFS= read -r line; do
		if [[ $line =~ ^(ok|not\ ok)\ [0-9]+\ ([^ ]+) ]]; then
			cur="${BASH_REMATCH[2]}"
			if [ "${BASH_REMATCH[1]}" = ok ]; then resumed_rc[$cur]=0; else resumed_rc[$cur]=1; fi
			: > "$tmpd/resumed.$cur"
		elif [ -n "$cur" ]; then
			echo "${line#    }" >> "$tmpd/resumed.$cur"
		fi
	done < "$resume"
fi

# Each test in a fresh bash: lib.sh and the hardware description sourced, then its file.
# kmemleak_judge: kmemleak's report of everything so far into kmemleak.txt (a time-out is
# recorded as such), then, when tests of marked files follow, kmemleak off.
kmemleak_judge() {
	local pid
	echo "[test] kmemleak scan"
	kmemleak_report "$out/kmemleak.txt" &
	pid=$!
	if ! wait_limited "$harness_limit" "$pid"; then
		stop_job "$pid" > /dev/null
		echo "kmemleak scan timed out after $harness_limit s" > "$out/kmemleak.txt"
	fi
	if [ $i -lt ${#tests[@]} ] && [ -w /sys/kernel/debug/kmemleak ]; then
		echo off > /sys/kernel/debug/kmemleak
		echo "[test] kmemleak is off for the last $((${#tests[@]} - i)) tests (# mpw-kmemleak: off)"
	fi
}

i=0
while [ $i -lt ${#tests[@]} ]; do
	t="${tests[$i]}" f="${file_of[$i]}"
	[ $i != "$n_early" ] || kmemleak_judge
	if [ -n "${resumed_rc[$t]+set}" ]; then
		echo "[test] $t: the result of the earlier VM, which stalled after it"
		record "${resumed_rc[$t]}" "$t" "$tmpd/resumed.$t"
		i=$((i + 1))
		continue
	fi
	if [ "$t" = "${MPW_FAKE_STALL:-}" ] && [ ! -f "$resume" ]; then
		# The harness's own test of its stall handling (tests/run.sh resumes in a fresh VM):
		# a stall as the guest reports one, then nothing more.
		echo "[test] $t: MPW_FAKE_STALL: simulating a stalled guest"
		report_stall "[simulated: MPW_FAKE_STALL=$t]"
		read -r -u "$MPW_TICK_FD" _
	fi
	if [ "$t" = "${MPW_FAKE_DEATH:-}" ] && [ ! -f "$resume" ]; then
		echo "[test] $t: MPW_FAKE_DEATH: resetting the guest"
		echo b > /proc/sysrq-trigger
		read -r -u "$MPW_TICK_FD" _
	fi
	echo "[test] running $t (${f##*/})"
	limit="${file_limit[$f]:-0}"
	[ "$limit" -gt "$test_limit" ] || limit="$test_limit"
	# shellcheck disable=SC2016 # expanded by that bash
	step "$t" "$limit" bash -c \
		'. "$1/tests/guest/lib.sh"; [ -f "$MPW_HW_ENV" ] && . "$MPW_HW_ENV"; set +eu; . "$2"; "$3"' \
		mpw-test "$root" "$f" "$t"
	i=$((i + 1))
done

# Unloading is part of the test: the vendor modules, then the library, must let go of
# everything. (With tests of marked files, kmemleak judged the run before them; the modules'
# unloading is judged by it in 20-modules and 80-stress.)
step unload_modules "$harness_limit" bash "$root/tests/guest/load-modules.sh" --unload
[ "$n_early" != ${#tests[@]} ] || kmemleak_judge
kill "$watcher" 2>/dev/null
guest_cpu "${cpu_start[@]}" > "$out/guest-cpu.txt" 2>&1
rm -rf "$tmpd"
echo "[test] $n integration results in $tap"
echo "complete: $n results" > "$out/run-tests.done"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM, for `make bench` (scripts/bench.sh): the benchmarks of one NVMe VF
# bound to vfio-pci against the same VF wrapped as an mdev (mpw_sample), interleaved,
# MPW_BENCH_REPS repetitions (default 5), then the scale run (P8).
#
# Each repetition runs both modes, in alternating order (vfio-pci first in odd ones, the
# mdev first in even ones); each mode starts with the VF bound to its own driver (nvme):
#   P4  vfio-pci: driver_override, unbind, bind to vfio-pci, open a DMA-ready device
#       mdev: (bound to mpw_sample, untimed) echo uuid > create, open a DMA-ready device
#   P1  bench-mmio: MMIO reads of VS (BAR0 0x8), writes of AQA (0x24) through an mmap
#   P2  bench-rw: pread/pwrite of config space and of the same BAR0 registers
#   P3  bench-nvme-io at queue depth 1 and 32, if a namespace is attached to the VF (one
#       is attached with `nvme attach-ns` when the subsystem has one that is not)
# Then, with perf (Debian's linux-perf) where it is installed, a profile of P2 in each mode
# (`perf record -g` of bench-rw; cpu-clock, TCG has no PMU) into $MPW_OUT/profile-MODE.txt:
# where a trapped access spends its time, kernel symbols included (MPW_BENCH_PROFILE=0: not).
# P8: every VF of every SR-IOV PF (igb raised to its sriov_totalvfs) bound to mpw_sample,
# one mdev each created concurrently, then removed concurrently, MPW_BENCH_SCALE_ROUNDS
# times (default 3); /proc/meminfo (Slab, SUnreclaim, VmallocUsed, Percpu) before, with
# the mdevs, and after.
#
# Measurements go to $MPW_OUT/bench-raw.txt, one a line: `rep=N mode=M bench=PN key=value`
# (scripts/bench-report.py makes the tables). Each step is a result in
# $MPW_OUT/integration.tap for tests/check_results.py; progress goes to stdout.

set -u
root="$MPW_ROOT"
out="$MPW_OUT"
. "$root/tests/guest/lib.sh"
client="$root/tests/client/target/release/mpw-vfio-client"
reps="${MPW_BENCH_REPS:-5}"
mmio_iters="${MPW_BENCH_MMIO_ITERS:-200000}"
rw_iters="${MPW_BENCH_RW_ITERS:-20000}"
io_count="${MPW_BENCH_IO_COUNT:-20000}"
scale_rounds="${MPW_BENCH_SCALE_ROUNDS:-3}"
profile=0
[ "${MPW_BENCH_PROFILE:-1}" = 1 ] && command -v perf > /dev/null && profile=1
limit="${MPW_BENCH_STEP_TIMEOUT:-600}"
raw="$out/bench-raw.txt"
tap="$out/integration.tap"
: > "$raw"
: > "$tap"
{
	printf '%s\n' setup_hw load_modules namespace
	for ((r = 1; r <= reps; r++)); do echo "rep$r"; done
	[ $profile = 0 ] || echo profile
	printf '%s\n' scale unload_modules
} > "$out/expected-tests.txt"

say() { echo "[bench] $*"; }
record() { # RESULT NAME LOG
	tap_record "$tap" bench "$@"
}

# emit REP MODE BENCH OUTPUT: the client's key=value lines into the raw results.
emit() {
	local l
	while IFS= read -r l; do
		[[ $l == *=* ]] && echo "rep=$1 mode=$2 bench=$3 $l" >> "$raw"
	done <<< "$4"
}

# client_step LOG REP MODE BENCH ARGS...: one client run under the time limit; its output
# is emitted and logged.
client_step() {
	local log="$1" rep="$2" mode="$3" bench="$4" o rc=0
	shift 4
	o="$(run_limited "$limit" "$bench $mode: mpw-vfio-client $*" "$client" "$@" 2>&1)" || rc=$?
	echo "$o" >> "$log"
	if [ $rc != 0 ]; then
		say "  $bench $mode: FAILED (status $rc): $(tail -2 <<< "$o" | tr '\n' ' ')"
		return $rc
	fi
	emit "$rep" "$mode" "$bench" "$o"
	say "  $bench $mode: $(grep -E '_ns=' <<< "$o" | tr '\n' ' ')"
}

kmemleak_forget
log="$(mktemp)"
stall_watch > /dev/null 2>&1 &
watcher=$!

say "hardware setup"
bash "$root/tests/guest/setup-hw.sh" > "$log" 2>&1; record $? setup_hw "$log"
# shellcheck source=/dev/null
. "$MPW_HW_ENV"
say "loading the modules (and the KUnit suites)"
bash "$root/tests/guest/load-modules.sh" --kunit > "$log" 2>&1; record $? load_modules "$log"

vf="${NVME_VFS[0]}"
vfdir="/sys/bus/pci/devices/$vf"

# vf_ctrl: the sysfs directory of the VF's NVMe controller (while bound to nvme).
vf_ctrl() {
	local c=("$vfdir"/nvme/nvme*)
	[ -e "${c[0]}" ] && echo "${c[0]}"
}
vf_live() {
	local c s
	c="$(vf_ctrl)" && read -r s < "$c/state" && [ "$s" = live ]
}

# to_nvme: the VF back to its own driver, with a live controller.
to_nvme() {
	unbind_override "$vf"
	wait_until 60 vf_live || { say "  VF $vf: no live nvme controller after 60 s"; return 1; }
}

# --- a namespace for P3 ------------------------------------------------------------------
: > "$log"
io=0
{
	ctrl="$(vf_ctrl)" && wait_until 60 vf_live && cntlid="$(< "$ctrl/cntlid")" || {
		echo "VF $vf has no live nvme controller"; false; }
} >> "$log" 2>&1 && {
	nsid="$(run_limited 60 "nvme list-ns" nvme list-ns "$NVME_CTRL" --all 2>>"$log" |
		sed -n 's/^ *\[ *[0-9]*\]: *\(0x[0-9a-f]*\).*$/\1/p' | head -1)"
	if [ -z "$nsid" ]; then
		say "no namespace in the NVMe subsystem: P3 (NVMe I/O) is skipped"
		echo "no namespace allocated in the subsystem" >> "$log"
	else
		attached="$(run_limited 60 "nvme list-ctrl" nvme list-ctrl "$NVME_CTRL" -n "$((nsid))" \
			2>>"$log" | sed -n 's/^ *\[ *[0-9]*\]: *\(0x[0-9a-f]*\).*$/\1/p')"
		echo "namespace $((nsid)) attached to controllers: $attached; VF controller $cntlid" >> "$log"
		if ! grep -qx "$(printf '0x%x' "$cntlid")" <<< "$attached"; then
			say "attaching namespace $((nsid)) to the VF's controller $cntlid"
			run_limited 60 "nvme attach-ns" nvme attach-ns "$NVME_CTRL" -n "$((nsid))" \
				-c "$cntlid" >> "$log" 2>&1 && io=1
		else
			io=1
		fi
	fi
}
if [ $io = 1 ]; then record 0 namespace "$log"; else
	# A missing namespace is not a failure of the run: P3 is then reported as not measured.
	say "P3 will not run (see above)"; record 0 namespace "$log"; fi
echo "p3_namespace=$io" >> "$raw"

# common REP MODE SYSFS LOG: P1, P2 and P3 on the open device SYSFS.
common() {
	local rep="$1" mode="$2" dev="$3" log="$4" qd
	client_step "$log" "$rep" "$mode" P1 bench-mmio "$dev" 0 0x8 0x24 "$mmio_iters" || return 1
	client_step "$log" "$rep" "$mode" P2 bench-rw "$dev" 0 0x8 0x24 "$rw_iters" || return 1
	[ $io = 1 ] || return 0
	for qd in 1 32; do
		client_step "$log" "$rep" "$mode" "P3qd$qd" bench-nvme-io "$dev" "$qd" "$io_count" ||
			return 1
	done
}

run_vfio() { # REP LOG
	local rc=0
	say " rep $1: vfio-pci"
	client_step "$2" "$1" vfio-pci P4 open-ready-vfio "$vf" || rc=1
	[ "$(pci_driver "$vf")" = vfio-pci ] && [ $rc = 0 ] && { common "$1" vfio-pci "$vfdir" "$2" || rc=1; }
	to_nvme >> "$2" 2>&1 || rc=1
	return $rc
}

run_mdev() { # REP LOG
	local rc=0 u t0 t1
	say " rep $1: mdev"
	u="$(uuidgen)"
	t0=$EPOCHREALTIME
	bind_to mpw_sample "$vf" >> "$2" 2>&1 || { echo "bind to mpw_sample failed" >> "$2"; rc=1; }
	t1=$EPOCHREALTIME
	# (Once per VF, not per mdev: the parent driver keeps the VF across mdevs.)
	echo "rep=$1 mode=mdev bench=P4 parent_bind_ns=$(( (${t1/./} - ${t0/./}) * 1000 ))" >> "$raw"
	[ $rc = 0 ] && { client_step "$2" "$1" mdev P4 open-ready-mdev "$vf" mpw_sample-vf "$u" || rc=1; }
	[ -e "/sys/bus/mdev/devices/$u" ] && [ $rc = 0 ] &&
		{ common "$1" mdev "/sys/bus/mdev/devices/$u" "$2" || rc=1; }
	[ -e "/sys/bus/mdev/devices/$u" ] && echo 1 > "/sys/bus/mdev/devices/$u/remove"
	to_nvme >> "$2" 2>&1 || rc=1
	return $rc
}

for ((r = 1; r <= reps; r++)); do
	: > "$log"
	say "repetition $r of $reps"
	rc=0
	if [ $((r % 2)) = 1 ]; then
		run_vfio "$r" "$log" || rc=1
		run_mdev "$r" "$log" || rc=1
	else
		run_mdev "$r" "$log" || rc=1
		run_vfio "$r" "$log" || rc=1
	fi
	record $rc "rep$r" "$log"
done

# --- Where P2's time goes ------------------------------------------------------------------
# profile_mode MODE DEV LOG: bench-rw on DEV under perf record; the report (self time by
# symbol, call chains folded away) into profile-MODE.txt.
profile_mode() {
	local data="$out/perf-$1.data"
	run_limited "$limit" "perf record of bench-rw ($1)" perf record -q -e cpu-clock -g \
		-o "$data" -- "$client" bench-rw "$2" 0 0x8 0x24 "$rw_iters" >> "$3" 2>&1 || return 1
	run_limited "$limit" "perf report ($1)" perf report -i "$data" --stdio --no-children \
		--sort dso,sym --percent-limit 0.3 -g none > "$out/profile-$1.txt" 2>> "$3" || return 1
	rm -f "$data"
	say "  profile of P2 ($1): $out/profile-$1.txt"
}
if [ $profile = 1 ]; then
	: > "$log"
	rc=0
	say "profile of P2 (perf record of bench-rw), vfio-pci then mdev"
	if run_limited "$limit" "open-ready-vfio" "$client" open-ready-vfio "$vf" >> "$log" 2>&1 &&
		[ "$(pci_driver "$vf")" = vfio-pci ]; then
		profile_mode vfio-pci "$vfdir" "$log" || rc=1
	else
		rc=1
	fi
	to_nvme >> "$log" 2>&1 || rc=1
	u="$(uuidgen)"
	if bind_to mpw_sample "$vf" >> "$log" 2>&1 &&
		echo "$u" > "/sys/class/mdev_bus/$vf/mdev_supported_types/mpw_sample-vf/create"; then
		profile_mode mdev "/sys/bus/mdev/devices/$u" "$log" || rc=1
	else
		rc=1
	fi
	[ ! -e "/sys/bus/mdev/devices/$u" ] || echo 1 > "/sys/bus/mdev/devices/$u/remove"
	to_nvme >> "$log" 2>&1 || rc=1
	record $rc profile "$log"
fi

# --- P8: every VF of every PF -----------------------------------------------------------
meminfo() { # KEY: its value in kB
	awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo
}
# settle: caches dropped, twice, with time for the RCU-deferred frees between (a reading
# right after one drop still counts the dentries and inodes it is freeing).
settle() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sleep 2
	echo 3 > /proc/sys/vm/drop_caches
	sleep 1
}
mem_snapshot() { # PREFIX REP
	local k
	settle
	for k in Slab SUnreclaim VmallocUsed Percpu; do
		echo "rep=$2 mode=mdev bench=P8 $1_$k=$(meminfo "$k")" >> "$raw"
	done
}

scale() { # LOG
	local pf total cur d v uuids=() pids=() ok t0 t1 round i rc=0
	for pf in /sys/bus/pci/devices/*; do
		[ -e "$pf/sriov_totalvfs" ] || continue
		read -r total < "$pf/sriov_totalvfs"
		read -r cur < "$pf/sriov_numvfs"
		# igb creates VFs by itself; the NVMe PF's need virt-mgmt (setup-hw.sh made all).
		if [ "$(pci_driver "${pf##*/}")" = igb ] && [ "$cur" != "$total" ]; then
			say " ${pf##*/}: sriov_numvfs $cur -> $total"
			run_limited 120 "sriov_numvfs=0" bash -c "echo 0 > $pf/sriov_numvfs" &&
				run_limited 300 "sriov_numvfs=$total" bash -c "echo $total > $pf/sriov_numvfs" ||
				return 1
		fi
	done
	local vfs=()
	for d in /sys/bus/pci/devices/*/virtfn*; do
		vfs+=("$(basename "$(readlink "$d")")")
	done
	say " ${#vfs[@]} VFs: ${vfs[*]}"
	echo "rep=0 mode=mdev bench=P8 vfs=${#vfs[@]}" >> "$raw"
	for v in "${vfs[@]}"; do
		run_limited 120 "bind $v to mpw_sample" bind_to mpw_sample "$v" ||
			{ echo "$v: bind to mpw_sample failed (driver $(pci_driver "$v"))"; return 1; }
	done
	for ((round = 1; round <= scale_rounds; round++)); do
		uuids=()
		for v in "${vfs[@]}"; do uuids+=("$(uuidgen)"); done
		mem_snapshot before "$round"
		pids=()
		t0=$EPOCHREALTIME
		for i in "${!vfs[@]}"; do
			echo "${uuids[$i]}" > "/sys/class/mdev_bus/${vfs[$i]}/mdev_supported_types/mpw_sample-vf/create" &
			pids+=($!)
		done
		ok=0
		for i in "${!pids[@]}"; do wait "${pids[$i]}" && ok=$((ok + 1)); done
		t1=$EPOCHREALTIME
		for u in "${uuids[@]}"; do [ -e "/sys/bus/mdev/devices/$u" ] || ok=$((ok - 1)); done
		mem_snapshot with "$round"
		echo "rep=$round mode=mdev bench=P8 created=$ok" >> "$raw"
		echo "rep=$round mode=mdev bench=P8 create_all_ns=$(( (${t1/./} - ${t0/./}) * 1000 ))" >> "$raw"
		say " round $round: $ok of ${#vfs[@]} mdevs created concurrently in $(( (${t1/./} - ${t0/./}) / 1000 )) ms"
		[ "$ok" = "${#vfs[@]}" ] || rc=1
		pids=()
		t0=$EPOCHREALTIME
		for u in "${uuids[@]}"; do
			[ -e "/sys/bus/mdev/devices/$u" ] || continue
			echo 1 > "/sys/bus/mdev/devices/$u/remove" &
			pids+=($!)
		done
		ok=0
		for i in "${!pids[@]}"; do wait "${pids[$i]}" && ok=$((ok + 1)); done
		t1=$EPOCHREALTIME
		for u in "${uuids[@]}"; do [ ! -e "/sys/bus/mdev/devices/$u" ] || ok=$((ok - 1)); done
		mem_snapshot after "$round"
		echo "rep=$round mode=mdev bench=P8 removed=$ok" >> "$raw"
		echo "rep=$round mode=mdev bench=P8 remove_all_ns=$(( (${t1/./} - ${t0/./}) * 1000 ))" >> "$raw"
		say " round $round: $ok removed concurrently in $(( (${t1/./} - ${t0/./}) / 1000 )) ms"
		[ "$ok" = "${#vfs[@]}" ] || rc=1
	done
	for v in "${vfs[@]}"; do unbind_override "$v"; done
	return $rc
}
: > "$log"
say "P8: every VF wrapped, mdevs created and removed concurrently"
scale 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
record "$rc" scale "$log"

say "unloading the modules"
bash "$root/tests/guest/load-modules.sh" --unload > "$log" 2>&1; record $? unload_modules "$log"
say "kmemleak scan"
kmemleak_report "$out/kmemleak.txt"
kill "$watcher" 2>/dev/null
rm -f "$log"
touch "$out/run-tests.done"

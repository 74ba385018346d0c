# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers for guest-side tests and scripts. Source it.

# pci_find VENDOR DEVICE: BDFs of the functions with these IDs (hex without 0x), one a line.
# (Builtins only: every fork is slow in the TCG guest.)
pci_find() {
	local d v i
	for d in /sys/bus/pci/devices/*; do
		read -r v < "$d/vendor"
		read -r i < "$d/device"
		[ "$v" = "0x$1" ] && [ "$i" = "0x$2" ] && echo "${d##*/}"
	done
	return 0
}

# pci_group BDF: the IOMMU group number of a PCI function (empty if none).
pci_group() {
	local l
	l="$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null)" || return 0
	basename "$l"
}

# pci_driver BDF: the name of the driver bound to a PCI function (empty if none).
pci_driver() {
	local d
	# The driver's directory with the function's link in it: no program to start (see kv).
	for d in /sys/bus/pci/drivers/*/"$1"; do
		[ -e "$d" ] || continue
		d="${d%/*}"
		echo "${d##*/}"
		return 0
	done
}

# group_members N: the devices of IOMMU group N, one a line.
group_members() {
	ls "/sys/kernel/iommu_groups/$1/devices/" 2>/dev/null
}

# Assertions: each prints what it expected and what it saw, and returns 1 on failure.
expect_eq() { # DESCRIPTION EXPECTED ACTUAL
	if [ "$2" != "$3" ]; then
		printf '# %s\n#   expected: %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_ne() { # DESCRIPTION UNWANTED ACTUAL
	if [ "$2" = "$3" ]; then
		printf '# %s\n#   expected anything but: %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_ge() { # DESCRIPTION MIN ACTUAL
	if ! [ "$3" -ge "$2" ] 2>/dev/null; then
		printf '# %s\n#   expected: >= %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_file() { # DESCRIPTION PATH
	if [ ! -e "$2" ]; then
		printf '# %s\n#   expected: %s to exist\n#   saw:      it does not\n' "$1" "$2"
		return 1
	fi
}

expect_no_file() { # DESCRIPTION PATH
	if [ -e "$2" ]; then
		printf '# %s\n#   expected: %s to be gone\n#   saw:      it exists\n' "$1" "$2"
		return 1
	fi
}

# expect_ok DESCRIPTION CMD...: CMD must exit 0; its output is shown on failure.
expect_ok() {
	local desc="$1" o rc=0
	shift
	o="$("$@" 2>&1)" || rc=$?
	if [ $rc != 0 ]; then
		printf '# %s\n#   expected: `%s` to succeed\n#   saw:      exit %s: %s\n' \
			"$desc" "$*" "$rc" "$(echo "$o" | tail -3 | tr '\n' ' ')"
		return 1
	fi
}

# nvme_field FIELD TEXT: a field of nvme-cli's plain output ("field   : value").
nvme_field() {
	awk -v f="$1" '$1 == f && $2 == ":" { sub(/^[^:]*: */, ""); sub(/ *$/, ""); print; exit }' <<< "$2"
}

# expect_guest_drove VF PF_IDENTIFY OUT: what `mpw-vfio-client qtest-nvme` (OUT) saw as QEMU's
# guest of VF's mdev is what the VF is: QEMU realized it without complaint, the config space,
# BAR and capabilities the guest sees are the VF's, QEMU mmap'ed the BAR, Identify Controller
# by DMA into guest RAM returned the PF's serial and model (PF_IDENTIFY: `nvme id-ctrl` of the
# PF), and the completion's MSI-X message reached guest RAM.
expect_guest_drove() {
	local vf="$1" pf_id="$2" out="$3" bar0 v
	local sys="/sys/bus/pci/devices/$vf"
	# QEMU's own checks at realize.
	expect_ok "QEMU found a reset mechanism (no 'Cannot reset device')" \
		test -z "$(grep 'Cannot reset device' <<< "$out")" || return 1
	expect_ok "QEMU enabled error recovery (no 'Could not enable error recovery')" \
		test -z "$(grep 'Could not enable error recovery' <<< "$out")" || return 1
	# Config space through the guest's config cycles.
	expect_eq "vendor ID the guest sees" "$(< "$sys/vendor")" "$(kv guest_vendor "$out")" || return 1
	expect_eq "device ID the guest sees" "$(< "$sys/device")" "$(kv guest_device "$out")" || return 1
	expect_eq "class the guest sees" "$(< "$sys/class")" "$(kv guest_class "$out")" || return 1
	expect_eq "interrupt pin the guest sees (a VF has none)" 0 "$(kv guest_intx_pin "$out")" || return 1
	v="$(kv guest_caps "$out")"
	expect_ok "the guest sees the MSI-X capability ($v)" grep -q "0x11@" <<< "$v" || return 1
	expect_ok "the guest sees the PCIe capability ($v)" grep -q "0x10@" <<< "$v" || return 1
	# guest_bar0=GPA:SIZE:KIND
	bar0="$(kv guest_bar0 "$out")"; bar0="${bar0#*:}"
	expect_eq "BAR0 size the guest sizes" "$(stat -c %s "$sys/resource0")" "$(( ${bar0%%:*} ))" || return 1
	expect_eq "command register: memory and bus master on" 6 "$(( $(kv guest_command "$out") & 6 ))" || return 1
	# QEMU's fast path: the BAR is mmap'ed into QEMU, the guest's accesses are loads and
	# stores (with MSI-X's table in BAR0: whole-BAR mmap, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE).
	expect_ge "VFIO device mappings in QEMU ($(kv qemu_vfio_mmap_sizes "$out"))" 1 \
		"$(kv qemu_vfio_mmaps "$out")" || return 1
	# The driver: registers through the guest-physical BAR, DMA into guest RAM.
	expect_eq "NVMe version through the BAR" 0x00010400 "$(kv nvme_vs "$out")" || return 1
	expect_eq "Identify completion status" 0x0 "$(kv identify_status "$out")" || return 1
	expect_eq "Identify command identifier" 0x4d50 "$(kv identify_cid "$out")" || return 1
	expect_eq "Identify VID in guest RAM" "$(< "$sys/vendor")" "$(kv identify_vid "$out")" || return 1
	expect_eq "Identify serial in guest RAM = the PF's" "$(nvme_field sn "$pf_id")" "$(kv identify_sn "$out")" || return 1
	expect_eq "Identify model in guest RAM = the PF's" "$(nvme_field mn "$pf_id")" "$(kv identify_mn "$out")" || return 1
	# The completion's interrupt: QEMU wrote MSI-X vector 0's message into guest RAM.
	expect_eq "MSI-X enabled by the guest" 1 "$(kv guest_msix_enabled "$out")" || return 1
	expect_eq "no message before the doorbell" 0x00000000 "$(kv msix_message_before "$out")" || return 1
	expect_eq "the completion's MSI-X message arrived" 1 "$(kv msix_fired "$out")" || return 1
}

# wait_held LOG PID [SECONDS]: waits (at most SECONDS, default 20) until the client PID,
# whose output goes to LOG, printed `held` (it has the device open); fails if it did not, or
# if it ended first.
wait_held() {
	local end=$((SECONDS + ${3:-20}))
	while ! grep -q '^held$' "$1"; do
		kill -0 "$2" 2>/dev/null && [ $SECONDS -lt "$end" ] || break
		sleep 0.1
	done
	grep -q '^held$' "$1"
}

# kv KEY TEXT: the value of KEY in "key=value" lines (the first). Bash alone: under TCG a
# program costs the debug kernel about 0.4 s to start, and tests call this hundreds of times.
kv() {
	local l
	while IFS= read -r l; do
		[[ $l == "$1="* ]] && { printf '%s\n' "${l#"$1="}"; break; }
	done <<< "$2"
	return 0
}

# The hardware description written by setup-hw.sh.
MPW_HW_ENV="${MPW_HW_ENV:-/tmp/mpw-hw.env}"

# bind_to DRIVER BDF: rebind a PCI function to DRIVER through driver_override.
bind_to() {
	local drv="$1" bdf="$2" cur
	echo "$drv" > "/sys/bus/pci/devices/$bdf/driver_override"
	cur="$(pci_driver "$bdf")"
	[ -z "$cur" ] || echo "$bdf" > "/sys/bus/pci/drivers/$cur/unbind"
	echo "$bdf" > /sys/bus/pci/drivers_probe
	[ "$(pci_driver "$bdf")" = "$drv" ]
}

# unbind_override BDF: unbind a PCI function, clear its driver_override and reprobe it.
unbind_override() {
	local bdf="$1" cur
	cur="$(pci_driver "$bdf")"
	[ -z "$cur" ] || echo "$bdf" > "/sys/bus/pci/drivers/$cur/unbind"
	echo > "/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" > /sys/bus/pci/drivers_probe
}

# mdev_on BDF [DRIVER]: wrap BDF with DRIVER (default mpw_sample) and create an mdev of its
# type "vf"; prints its sysfs path.
mdev_on() {
	local t u drv="${2:-mpw_sample}"
	bind_to "$drv" "$1" || return 1
	t="/sys/class/mdev_bus/$1/mdev_supported_types/$drv-vf"
	u="$(< /proc/sys/kernel/random/uuid)"
	echo "$u" > "$t/create" || return 1
	echo "/sys/bus/mdev/devices/$u"
}

# mdev_off SYSFS BDF: remove the mdev and give BDF back to its own driver.
mdev_off() {
	[ -z "$1" ] || echo 1 > "$1/remove"
	unbind_override "$2"
}

# dmesg_since MARK: kernel messages after the line containing MARK.
dmesg_since() {
	dmesg | sed -n "/$1/,\$p"
}


# --- Kernel messages a test provokes on purpose ----------------------------------------
# check_results.py fails a run on IOMMU faults, AER reports, spurious-IRQ reports and VT-d
# invalidation errors. A test that provokes one on purpose says so with these markers in the
# kernel log; messages of CLASS are then not counted between the two markers, or until the
# test ends (run-tests.sh marks each test's end), whichever comes first. CLASS is one of:
#   dmar-fault         DMAR: [DMA Read|Write ...] Request device [...] fault addr ...,
#                      DMAR: DRHD: handling fault status reg ...
#   intr-remap-fault   DMAR: [INTR-REMAP] Request device [...] fault index ...
#   aer                AER: ... error message received / PCIe Bus Error: ...
#   spurious-irq       irq N: nobody cared, Disabling IRQ #N
#   vtd-invalidation   VT-d detected Invalidation Time-out/Queue/Completion Error ...
#   pci-remove-unlocked  WARNING: drivers/pci/remove.c:128 at pci_stop_and_remove_bus_device
#                      (a kernel issue: a PF driver's remove disabling SR-IOV, e.g. igb's)
# Both pass the status of the command before them through, so that expect_splats_end can be
# a test's last line without changing its result.
expect_splats_begin() { # CLASS
	local rc=$?
	echo "mpw-expect: $1 begin" > /dev/kmsg
	return $rc
}

expect_splats_end() { # CLASS
	local rc=$?
	echo "mpw-expect: $1 end" > /dev/kmsg
	return $rc
}

# --- Time limits -----------------------------------------------------------------------
# A step that hangs in the kernel must not hang the whole run: the harness runs each test and
# each hardware-setup step under a time limit and, on a time-out, leaves evidence (blocked
# tasks, the kernel log's tail) and moves on. A task in uninterruptible sleep cannot be
# killed: after a short grace period it is abandoned, never waited for.

# The alarm clock of wait_limited: a descriptor that never has data, read with a time-out by
# bash's own `read -t`. Nothing is executed for an alarm (a fork of this shell only): a guest
# whose root file system (9p) stops answering can no longer start programs, and the time
# limits must still fire then. The one `sleep` it needs is started here, once.
if [ -z "${MPW_TICK_FD:-}" ] || ! { true <&"$MPW_TICK_FD"; } 2>/dev/null; then
	exec {MPW_TICK_FD}< <(exec sleep infinity)
	export MPW_TICK_FD
fi

# wait_limited SECONDS PID: waits at most SECONDS for the background job PID of this shell.
# Returns 0 when it ended (its status is then in $job_rc), 1 when it is still running.
# (`wait -n` on the job and on an alarm subshell: no polling, nothing executed.)
wait_limited() {
	local alarm who=
	# `wait -n` does not see a job bash has already reaped: one that ended before the call
	# (it would wait out the whole alarm). A plain `wait` returns its kept status.
	if ! kill -0 "$2" 2>/dev/null; then
		wait "$2" 2>/dev/null
		job_rc=$?
		return 0
	fi
	(read -r -t "$1" -u "$MPW_TICK_FD" _) &
	alarm=$!
	# (stderr: no "Killed" job report from bash)
	wait -n -p who "$2" "$alarm" 2>/dev/null
	job_rc=$?
	if [ "$who" != "$2" ] && ! kill -0 "$2" 2>/dev/null; then
		# It ended, and was reaped, between the check above and `wait -n`.
		wait "$2" 2>/dev/null
		job_rc=$?
		who="$2"
	fi
	if [ "$who" = "$2" ]; then
		kill "$alarm" 2>/dev/null
		wait "$alarm" 2>/dev/null
		return 0
	fi
	return 1
}

# exec_works [SECONDS]: whether this guest's root file system still answers (in SECONDS, 20):
# a lookup of a name it has never seen (no cached answer: a 9p request), then a program
# started (which may come from the page cache alone).
exec_works() {
	local pid
	([ -e "/.mpw-probe-$BASHPID-$RANDOM" ]; exec /bin/true) &
	pid=$!
	wait_limited "${1:-20}" "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
	return 1
}

# stall_watch: runs for good (start it in the background): every 30 s, checks that the guest
# can still start a program, and says so in the kernel log (`mpw-alive`, at debug level: not
# on the console). When it cannot twice in a row (30 s each), the root file system stopped
# answering: the blocked tasks and the virtio interrupts go to the kernel log with the marker
# the host's watchdog stops the VM on, a minute after the stall instead of at the end of the
# running test's time limit. When the watcher itself cannot go on (session 10 saw a stall in
# which no test's time limit fired either), the `mpw-alive` lines stop: the host's watchdog
# takes that for a stall too (scripts/vm.sh, MPW_VM_ALIVE).
stall_watch() {
	local fails=0
	while :; do
		read -r -t 30 -u "$MPW_TICK_FD" _
		if exec_works 30; then
			fails=0
			echo "<7>mpw-alive: a program started" > /dev/kmsg
			continue
		fi
		fails=$((fails + 1))
		[ $fails -ge 2 ] || continue
		echo "<4>mpw-harness: no program started in 30 s, twice: the root file system" \
			"stalled" > /dev/kmsg
		echo w 2>/dev/null > /proc/sysrq-trigger
		report_stall
		return 1
	done
}

# report_stall [NOTE]: the virtio evidence, then the marker the host's watchdog (scripts/vm.sh)
# stops the VM on, with NOTE after it. Builtins only.
report_stall() {
	virtio_irq_evidence
	echo "<3>mpw-harness: the guest cannot start programs (root file system stalled)${1:+ $1}" \
		> /dev/kmsg
}

# virtio_irq_evidence: which virtio device serves which 9p mount, and the virtio lines of
# /proc/interrupts twice, 5 s apart (does the root file system's device still interrupt?),
# into the kernel log. Builtins only: it runs when programs cannot start.
virtio_irq_evidence() {
	local d tag l round
	for d in /sys/bus/virtio/devices/virtio*; do
		tag=""
		read -r tag 2>/dev/null < "$d/mount_tag"
		[ -n "$tag" ] && echo "<4>mpw-harness: ${d##*/} is the 9p device of mount tag $tag" > /dev/kmsg
	done
	for round in 1 2; do
		[ $round = 2 ] && read -r -t 5 -u "$MPW_TICK_FD" _
		while read -r l; do
			[[ $l == *virtio* ]] && echo "<4>mpw-harness: interrupts ($round): $l" > /dev/kmsg
		done < /proc/interrupts
	done
}

# hang_evidence [PGID]: the blocked tasks (sysrq w, written to the kernel log), the kernel
# stacks of the processes of group PGID, and the last 80 lines of the kernel log, as TAP
# diagnostics. Builtins only until the guest is known to start programs: if it cannot, says
# so in the kernel log (`mpw-harness: the guest cannot start programs`), which the host's
# watchdog takes for a stalled guest.
hang_evidence() {
	local s f p l
	echo "# blocked tasks (sysrq w, in the kernel log):"
	echo w 2>/dev/null > /proc/sysrq-trigger || echo "#   (no /proc/sysrq-trigger)"
	if [ -n "${1:-}" ]; then
		for s in /proc/[0-9]*/stat; do
			read -r s 2>/dev/null < "$s" || continue
			read -r -a f <<< "${s##*) }"
			[ "${f[2]}" = "$1" ] || continue
			p="${s%% *}"
			echo "# process $p ($(< "/proc/$p/comm"), state ${f[0]}), kernel stack:"
			while read -r l; do echo "#   $l"; done < "/proc/$p/stack"
		done 2>/dev/null
	fi
	if ! exec_works; then
		echo "# the guest cannot start programs any more (/bin/true did not run in 20 s):" \
			"its root file system (9p) stopped answering"
		report_stall
		return 1
	fi
	echo "# the last 80 kernel log lines:"
	dmesg 2>/dev/null | tail -80 | sed 's/^/#   /'
}

# stop_job PID: kills the background job PID, and its whole process group if it leads one
# (setsid), waits a few seconds for it to go and abandons it if it does not. Prints what
# happened as TAP diagnostics; returns 1 if something was abandoned.
stop_job() {
	local pid="$1" target="$1" stat f state=gone wchan='?'
	if read -r stat 2>/dev/null < "/proc/$pid/stat"; then
		# pid (comm) state ppid pgrp ...: comm may hold spaces, so cut after its ')'.
		read -r -a f <<< "${stat##*) }"
		[ "${f[2]}" = "$pid" ] && target="-$pid"
	fi
	kill -TERM -- "$target" 2>/dev/null
	if ! wait_limited 3 "$pid"; then
		kill -KILL -- "$target" 2>/dev/null
		if ! wait_limited 5 "$pid"; then
			read -r stat 2>/dev/null < "/proc/$pid/stat" && read -r -a f <<< "${stat##*) }" &&
				state="${f[0]}"
			read -r wchan 2>/dev/null < "/proc/$pid/wchan"
			echo "# process $pid survived SIGKILL (state $state, in $wchan): in uninterruptible" \
				"sleep in the kernel; abandoned, not waited for"
			disown "$pid" 2>/dev/null
			return 1
		fi
	fi
	if [ "$target" != "$pid" ] && ! wait_until 5 group_gone "$pid"; then
		kill -KILL -- "$target" 2>/dev/null
		echo "# processes of group $pid survived SIGKILL: $(pgroup_members "$pid");" \
			"in uninterruptible sleep in the kernel; abandoned, not waited for"
		return 1
	fi
	echo "# process $pid stopped"
}

# pgroup_members PGID: "pid:comm:state:wchan" of the live (not zombie) processes of a
# process group. (Builtin reads only.)
pgroup_members() {
	local s f w
	for s in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null < "$s" || continue
		read -r -a f <<< "${s##*) }"
		if [ "${f[2]}" != "$1" ] || [ "${f[0]}" = Z ]; then continue; fi
		s="${s%% *}"
		read -r w 2>/dev/null < "/proc/$s/wchan" || w='?'
		printf '%s:%s:%s:%s ' "$s" "$(< "/proc/$s/comm")" "${f[0]}" "$w"
	done 2>/dev/null
}

group_gone() { # PGID
	[ -z "$(pgroup_members "$1")" ]
}

# run_limited SECONDS DESCRIPTION CMD...: runs CMD (a program or a function) in the background
# and waits at most SECONDS for it. Returns its status; on a time-out, prints DESCRIPTION with
# the evidence to stderr, stops CMD and returns 124.
run_limited() {
	local secs="$1" desc="$2" pid
	shift 2
	"$@" &
	pid=$!
	if wait_limited "$secs" "$pid"; then
		return "$job_rc"
	fi
	{
		echo "# $desc: timed out after $secs s"
		hang_evidence
		stop_job "$pid"
	} >&2
	return 124
}

# wait_until SECONDS CMD...: polls CMD (every 0.25 s, wall-clock bound) until it succeeds.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.25
	done
}

# --- The guest programs record their steps as TAP results for tests/check_results.py, and
# judge kmemleak around them: tap_record for `make stress` and `make bench`
# (tests/stress/guest.sh, tests/bench/guest.sh; run-tests.sh records its own way, with a time
# limit per step); the kmemleak functions for all three.

# tap_record TAP WHO RESULT NAME LOG: result NAME (0: ok), numbered on from the last one
# (tap_n), into the file TAP, with LOG's last 40 lines as the diagnostics of a failure; said
# on stdout as `[WHO] ok NAME` or `[WHO] not ok NAME`.
tap_n=0
tap_record() {
	local tap="$1" who="$2" rc="$3" name="$4" log="$5" verdict=ok
	tap_n=$((tap_n + 1))
	[ "$rc" = 0 ] || verdict="not ok"
	echo "$verdict $tap_n $name" >> "$tap"
	[ "$rc" = 0 ] || tail -40 "$log" | sed 's/^/    # /' >> "$tap"
	echo "[$who] $verdict $name"
}

# guest_cpu CPU_LINE...: how the guest's CPUs spent the time since CPU_LINE (the first line
# of /proc/stat, read into an array then): user, system, idle, I/O wait, in seconds and
# shares; then the processes that are still there, by their own CPU time.
guest_cpu() {
	local -a now
	local names=(user nice system idle iowait irq softirq steal) i d total=0 hz
	hz=$(getconf CLK_TCK)
	shift # ("cpu")
	read -r -a now < /proc/stat
	for i in 1 2 3 4 5 6 7 8; do
		total=$((total + now[i] - ${!i}))
	done
	[ $total -gt 0 ] || total=1
	echo "# guest CPU time since the run began (all CPUs; $((total / hz)) s)"
	for i in 1 2 3 4 5 6 7 8; do
		d=$((now[i] - ${!i}))
		printf '%-8s %6d s %3d%%\n' "${names[i - 1]}" $((d / hz)) $((100 * d / total))
	done
	echo "# processes still running, by their own CPU time"
	ps -eo pid,cputime,args --sort=-cputime 2>/dev/null | cut -c1-150 | head -15
}

# kmemleak_forget: what kmemleak has found so far (boot's leftovers) no longer counts. Its
# automatic scan (every 10 minutes, about a minute of a vCPU under TCG each) is turned off:
# the only scans are this one and kmemleak_report's, which judge the run.
kmemleak_forget() {
	local k=/sys/kernel/debug/kmemleak
	[ -w "$k" ] || return 0
	echo scan=off > "$k"
	echo scan > "$k"
	echo clear > "$k"
}

# kmemleak_report FILE: kmemleak's report into FILE (empty when nothing leaked), after two
# scans 6 s apart (an object is reported once it has looked unreferenced for a while), or
# "kmemleak not available".
kmemleak_report() {
	local k=/sys/kernel/debug/kmemleak
	if [ -w "$k" ]; then
		echo scan > "$k"; sleep 6; echo scan > "$k"
		cat "$k" > "$1"
	else
		echo "kmemleak not available" > "$1"
	fi
}

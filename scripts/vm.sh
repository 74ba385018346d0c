# SPDX-License-Identifier: GPL-2.0
#
# The test VM: the cached kernel booted by virtme-ng under QEMU (TCG; nested KVM hangs on
# this machine kind) on q35 with an emulated Intel IOMMU and the SR-IOV hardware the tests
# use. Source it and call mpw_vm_run. See docs/test-vm.md.
#
# Emulated hardware (each PCIe device behind its own root port has its own IOMMU group):
#   rp1  igb 82576 PF (8086:10c9), up to 8 VFs (8086:10ca), created in the guest
#   rp2  NVMe PF with SR-IOV (1b36:0010), 2 VFs, flexible resources assigned in the guest
#   rp3  virtio-net, modern only (1af4:1041), iommu_platform
#   rp4  PCIe-to-PCI bridge: conventional PCI has no ACS, so everything behind it is ONE
#        non-singleton IOMMU group: edu (1234:11e8, a DMA-capable test device with no host
#        driver) and virtio-rng (1af4:1005, bound to virtio-pci: a host DMA driver)
#   rp5  e1000e (8086:10d3): a PCIe function with both MSI and MSI-X and no host driver

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

MPW_VM_MEM="${MPW_VM_MEM:-2G}"
MPW_VM_CPUS="${MPW_VM_CPUS:-2}"

mpw_vm_qemu_opts() {
	local o=(
		-machine q35,kernel-irqchip=split
		-device intel-iommu,intremap=on,caching-mode=on,device-iotlb=off
		-device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=0x10
		-device igb,bus=rp1
		-device pcie-root-port,id=rp2,chassis=2,slot=2,bus=pcie.0,addr=0x11
		-device nvme-subsys,id=mpwsubsys0,nqn=nqn.2026-11.io.mdev-pci-wrap:subsys0
		-device "nvme,serial=MPW0NVME0001,bus=rp2,subsys=mpwsubsys0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6,msix_qsize=6"
		-device pcie-root-port,id=rp3,chassis=3,slot=3,bus=pcie.0,addr=0x12
		-device virtio-net-pci,bus=rp3,disable-legacy=on,iommu_platform=on
		-device pcie-root-port,id=rp4,chassis=4,slot=4,bus=pcie.0,addr=0x13
		-device pcie-pci-bridge,id=br0,bus=rp4
		-device edu,bus=br0,addr=0x1
		-device virtio-rng-pci,bus=br0,addr=0x2
		-device pcie-root-port,id=rp5,chassis=5,slot=5,bus=pcie.0,addr=0x14
		-device e1000e,bus=rp5
	)
	# MPW_VM_QEMU_EXTRA: more QEMU options for one run (make bench: a namespace in the NVMe
	# subsystem for the VF's I/O, scripts/bench.sh).
	echo "${o[*]}${MPW_VM_QEMU_EXTRA:+ $MPW_VM_QEMU_EXTRA}"
}

# The guest's file systems (the host's root, read-only, and the writable output directory)
# go over virtio-fs: virtme-ng uses virtiofsd when it finds one (make deps installs it into
# $MPW_TOOLS/bin, on PATH through env.sh). Not over 9p, virtme's fallback: over 9p the guest's
# root file system stopped for good now and then (docs/test-vm.md, "The silent guest
# stall"), and in session 10 a 9p boot of this kernel did not mount its root at all (virtme-ng
# gives no root= for 9p: "9p: Bad value for 'source'", then both vCPUs idle; seen twice, to
# the stall watchdog). So without virtiofsd there is no VM.
mpw_vm_fs_check() {
	command -v virtiofsd > /dev/null && return 0
	echo "vm.sh: no virtiofsd on PATH (make deps installs it into $MPW_TOOLS/bin)" >&2
	return 1
}

# KVM is used only when asked for (MPW_KVM=1): nested KVM hangs on the machines this project
# is developed and tested on.
mpw_vm_accel_args() {
	if [ "${MPW_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then
		echo ""
	else
		echo "--disable-kvm"
	fi
}

# mpw_vm_stall_evidence OUT QMP: what the stalled guest's QEMU was doing (its threads and
# its virtio queues, twice five seconds apart), into OUT/qemu-evidence.txt.
mpw_vm_stall_evidence() {
	local out="$1" qmp="$2" pid
	pid="$(pgrep -f "qemu-system.*virtme_initmount0=${out#/}" | head -1)"
	[ -n "$pid" ] || { echo "(no QEMU process found)" > "$out/qemu-evidence.txt"; return; }
	timeout 90 python3 "$MPW_ROOT/scripts/qemu-evidence.py" "$pid" "$qmp" 2 \
		> "$out/qemu-evidence.txt" 2>&1
	echo "[vm] what QEMU was doing: $out/qemu-evidence.txt" >&2
}

# mpw_vm_death OUT VNG_RC: one line on a VM that ended without the guest's status (no
# OUT/cmd.rc, no stall): QEMU's last SHUTDOWN event (scripts/qmp-events.py), whether QEMU
# logged a triple fault, and the host's free memory and disk space (a QEMU killed by the
# host, or a guest whose writes to OUT failed, ends so too).
mpw_vm_death() {
	local out="$1" rc="$2" ev
	ev="$(grep ' SHUTDOWN ' "$out/qmp-events.txt" 2>/dev/null | tail -1)"
	printf 'the VM ended during the run without the guest'"'"'s status (vng exit %s); ' "$rc"
	if [ -n "$ev" ]; then
		printf 'QEMU: %s' "${ev#* }"
	elif grep -q "QEMU closed" "$out/qmp-events.txt" 2>/dev/null; then
		printf 'QEMU ended with no SHUTDOWN event (it crashed or was killed)'
	else
		printf 'no QMP events recorded'
	fi
	grep -q "Triple fault" "$out/qemu-log.txt" 2>/dev/null &&
		printf '; QEMU logged a triple fault (qemu-log.txt)'
	printf '; host: %s MiB available, %s free under %s\n' \
		"$(awk '/^MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)" \
		"$(df -h --output=avail "$out" 2>/dev/null | tail -1 | tr -d ' ')" "$out"
}

# mpw_vm_follow OUT: the guest's output (OUT/cmd.out, made empty first) on this terminal, as
# it grows, until mpw_vm_unfollow.
mpw_vm_follow() {
	: > "$1/cmd.out"
	tail -n +1 -F "$1/cmd.out" 2>/dev/null | sed -u 's/^/  [vm] /' &
	MPW_VM_TAILER=$!
}

mpw_vm_unfollow() {
	kill "$MPW_VM_TAILER" 2>/dev/null
	wait "$MPW_VM_TAILER" 2>/dev/null
}

# mpw_vm_run OUT TIMEOUT_S CMD...
# Boots the VM, runs CMD (a shell command line, run by bash as root, cwd = the repository)
# and powers off. OUT is a host directory the guest can write; CMD's stdout+stderr land in
# OUT/cmd.out, its status in OUT/cmd.rc, the kernel log in OUT/dmesg.txt (at the end) and
# OUT/kmsg.txt (as it is written) and the whole serial console in OUT/console.log. Returns
# CMD's status (124 on timeout or a stall, 125 if the VM ended without the guest's status:
# OUT/died.txt says how).
mpw_vm_run() {
	local out="$1" timeout_s="$2"
	shift 2
	local cmd="$*"
	mkdir -p "$out"
	rm -f "$out/cmd.out" "$out/cmd.rc" "$out/dmesg.txt" "$out/kmsg.txt"
	local wrapper
	wrapper="$(printf '%q ' bash "$MPW_ROOT/tests/guest/vm-wrapper.sh" "$out" "$cmd")"
	# no5lvl: with 5-level paging this kernel takes an early-boot interrupt whose irq_desc
	# access KASAN reports as wild (handle_edge_irq during identify_cpu, before any of our
	# code runs); the test VM uses 4-level paging.
	# loglevel=5: warnings (WARN, lockdep, driver time-outs) reach console.log, info does not.
	# kunit.filter_glob: only the project's suites run (at module load), not the kernel's own.
	# nohz=off highres=off: a periodic tick. Twice (the first cold run of session 1 in
	# hardware setup, and a full run of session 3 in the middle of a test) the guest went
	# idle for good under TCG: both vCPUs halted (QEMU at 0% CPU), nothing more in any log,
	# not even the harness's own `sleep` time-outs or the hung-task detector firing: no timer
	# interrupt came any more, as when a one-shot timer programming is lost. A periodic tick
	# does not depend on re-arming a one-shot timer.
	local append="intel_iommu=on iommu=pt kmemleak=on no5lvl loglevel=5 nohz=off highres=off"
	append="$append kunit.filter_glob=mdev_pci_wrap*"
	# MPW_VM_APPEND_EXTRA: more kernel parameters for one run (an experiment: later ones win,
	# e.g. kmemleak=off).
	append="$append${MPW_VM_APPEND_EXTRA:+ $MPW_VM_APPEND_EXTRA}"
	# A QMP socket, for what QEMU was doing if the guest stalls (scripts/qemu-evidence.py).
	local qmp qmpev
	qmp="${TMPDIR:-/tmp}/mpw-qmp-$$-$RANDOM.sock"
	# A second one for QEMU's events (scripts/qmp-events.py: how QEMU ended, if the VM ends
	# without the guest's status), and QEMU's own log of CPU resets (a triple fault says so).
	qmpev="$qmp.events"
	rm -f "$qmp" "$qmpev" "$out/qmp-events.txt" "$out/qemu-log.txt" "$out/died.txt"
	mpw_vm_fs_check || return 125
	# shellcheck disable=SC2046
	timeout --foreground -k 10 "$timeout_s" \
		vng --run "$MPW_KBUILD" $(mpw_vm_accel_args) --disable-microvm \
			--user root --memory "$MPW_VM_MEM" --cpus "$MPW_VM_CPUS" \
			--cwd "$MPW_ROOT" --rwdir "$out" --verbose \
			--append="$append" --qemu-opts="$(mpw_vm_qemu_opts) -qmp unix:$qmp,server=on,wait=off -qmp unix:$qmpev,server=on,wait=off -d cpu_reset -D $out/qemu-log.txt -name mpw-test-vm,debug-threads=on" \
			--exec "$wrapper" > "$out/console.log" 2>&1 < /dev/null &
	local vm=$!
	python3 "$MPW_ROOT/scripts/qmp-events.py" "$qmpev" "$out/qmp-events.txt" &
	local events=$!
	# The stall watchdog: a guest whose kernel log (heartbeats aside) and output both stop
	# growing for MPW_VM_STALL seconds (default 480: longer than any test's own time limit)
	# is stalled. It is stopped, and the run says so (stalled.txt) instead of waiting for the
	# whole run's time-out.
	# The guest's stall watcher (tests/guest/lib.sh, stall_watch) logs `mpw-alive` every 30 s
	# while programs start: once it has, MPW_VM_ALIVE seconds (default 150) without one is a
	# stall as well.
	local stall="${MPW_VM_STALL:-480}" alive_limit="${MPW_VM_ALIVE:-150}" last=0 size now quiet
	local alive=0 alive_at=0 n
	quiet=$(date +%s)
	rm -f "$out/stalled.txt"
	while kill -0 $vm 2>/dev/null; do
		sleep 15
		# (Not the console, nor the heartbeat's or the watcher's lines in the kernel log: they
		# go on in a guest whose tests are stuck.)
		size=$(cat "$out/kmsg.txt" "$out/cmd.out" 2>/dev/null | grep -vc 'mpw-heartbeat\|mpw-alive')
		now=$(date +%s)
		n=$(grep -c mpw-alive "$out/kmsg.txt" 2>/dev/null)
		[ "${n:-0}" = "$alive" ] || { alive=${n:-0} alive_at=$now; }
		if [ "$alive" -gt 0 ] && [ ! -f "$out/cmd.rc" ] &&
			[ $((now - alive_at)) -ge "$alive_limit" ]; then
			echo "the guest stalled: its stall watcher has not said that a program could" \
				"start for $((now - alive_at)) s (heartbeats on the console:" \
				"$(grep -c mpw-heartbeat "$out/console.log")); stopped" > "$out/stalled.txt"
			echo "[vm] $(cat "$out/stalled.txt")" >&2
			mpw_vm_stall_evidence "$out" "$qmp"
			pkill -TERM -f "virtme_initmount0=${out#/}" 2>/dev/null
			break
		elif grep -q "mpw-harness: the guest cannot start programs" "$out/kmsg.txt" 2>/dev/null; then
			echo "the guest stalled: it cannot start programs any more (its root file" \
				"system stopped answering; see the blocked tasks in kmsg.txt); stopped" \
				> "$out/stalled.txt"
			echo "[vm] $(cat "$out/stalled.txt")" >&2
			mpw_vm_stall_evidence "$out" "$qmp"
			pkill -TERM -f "virtme_initmount0=${out#/}" 2>/dev/null
			break
		elif [ "$size" != "$last" ]; then
			last=$size quiet=$now
		elif [ $((now - quiet)) -ge "$stall" ]; then
			echo "the guest stalled: no kernel log or output for ${stall}s (heartbeats on" \
				"the console: $(grep -c mpw-heartbeat "$out/console.log")" \
				"(load $(cut -d' ' -f1 /proc/loadavg) on the host); stopped" > "$out/stalled.txt"
			echo "[vm] $(cat "$out/stalled.txt")" >&2
			mpw_vm_stall_evidence "$out" "$qmp"
			# QEMU's command line names the output directory (virtme's mount of it).
			pkill -TERM -f "virtme_initmount0=${out#/}" 2>/dev/null
			break
		fi
	done
	wait $vm
	local vng_rc=$?
	# (It ends when QEMU closes its connection; a QEMU that never opened the socket leaves it
	# waiting out its minute.)
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 $events 2>/dev/null || break
		sleep 1
	done
	kill $events 2>/dev/null
	wait $events 2>/dev/null
	rm -f "$qmp" "$qmpev"
	if [ -f "$out/stalled.txt" ]; then
		return 124
	fi
	if [ $vng_rc = 124 ] || [ $vng_rc = 137 ]; then
		echo "[vm] timed out after ${timeout_s}s; console: $out/console.log" >&2
		return 124
	fi
	if [ ! -f "$out/cmd.rc" ]; then
		mpw_vm_death "$out" "$vng_rc" > "$out/died.txt"
		echo "[vm] $(cat "$out/died.txt")" >&2
		echo "[vm] last console lines:" >&2
		tail -25 "$out/console.log" >&2
		return 125
	fi
	return "$(cat "$out/cmd.rc")"
}

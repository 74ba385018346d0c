#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the same NVMe VF bound to vfio-pci and wrapped as an mdev, benchmarked in one
# VM run (tests/bench/guest.sh: P1 MMIO through mmap, P2 trapped pread/pwrite, P3 NVMe I/O
# through the client's own queue pair, P4 time to an open DMA-ready device, interleaved over
# MPW_BENCH_REPS repetitions; P8 every VF wrapped, mdevs created and removed concurrently,
# kernel memory per mdev). Prints progress; then scripts/bench-report.py computes medians,
# spreads and ratios into out/bench/results.md and docs/benchmarks.md (between its
# `bench-results` markers), with the command, date and machine.
#
# The numbers are only results on an otherwise idle machine: the script notes the host's
# load and any other QEMU running before and after the VM run, and a busy host is written
# down as "not a result" (the doc is then left alone unless MPW_BENCH_DOC=1).
#
# The VM gets one more device for P3: a 1 GiB namespace (QEMU's null-co block driver, reads
# return zeroes without touching a disk) in the NVMe subsystem, detached; the guest attaches
# it to the VF's controller with `nvme attach-ns`.

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm.sh
. "$here/vm.sh"

if [ "${MPW_NO_BUILD:-0}" != 1 ]; then
	make -s -C "$MPW_ROOT" modules client || { echo "building failed"; exit 1; }
fi
out="$MPW_ROOT/out/bench"
rm -rf "$out"
mkdir -p "$out"

# host_state: the host's load and the QEMU processes it runs (none of ours at these points).
host_state() {
	local q
	q="$(pgrep -c -f '^[^ ]*qemu-system' 2>/dev/null)" || q=0
	echo "load=$(cut -d' ' -f1-3 /proc/loadavg) other_qemu=$q"
}
export MPW_VM_QEMU_EXTRA="-blockdev driver=null-co,node-name=mpwbenchns,size=1073741824,read-zeroes=on -device nvme-ns,drive=mpwbenchns,nsid=1,detached=on"
{
	echo "command=make bench$(env | grep -E '^MPW_BENCH_[A-Z_]*=' | sort | sed 's/^/ /' | tr -d '\n')"
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit=$(git -C "$MPW_ROOT" rev-parse --short HEAD)$(git -C "$MPW_ROOT" diff --quiet HEAD -- . ':!docs/benchmarks.md' || echo ' (with uncommitted changes)')"
	echo "host=$(uname -srm)"
	echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "nproc=$(nproc)"
	echo "mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "qemu=$(qemu-system-x86_64 --version | head -1)"
	echo "accel=$([ -z "$(mpw_vm_accel_args)" ] && echo KVM || echo TCG)"
	echo "guest=${MPW_KBUILD##*/}, ${MPW_VM_CPUS} vCPUs, ${MPW_VM_MEM}"
	echo "host_before=$(host_state)"
} > "$out/machine.txt"
echo "[bench] $(grep -E '^(command|host_before)=' "$out/machine.txt" | tr '\n' ' ')"
echo "[bench] output: $out (raw measurements: bench-raw.txt)"
mpw_vm_follow "$out"
# Other QEMU processes while the VM runs (ours names $out in its command line): any at all
# means the benchmarks competed for the CPUs.
(
	max=0
	while :; do
		n=0
		for p in $(pgrep -f '^[^ ]*qemu-system'); do
			tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q "virtme_initmount0=${out#/}" ||
				n=$((n + 1))
		done
		[ $n -le $max ] || { max=$n; echo "$max" > "$out/other-qemu-max.txt"; }
		sleep 20
	done
) &
sampler=$!
guest=""
for v in $(env | grep -oE '^MPW_BENCH_[A-Z_]*'); do guest="$guest $v=$(printf '%q' "${!v}")"; done
rc=0
mpw_vm_run "$out" "${MPW_BENCH_TIMEOUT:-10800}" "${guest# } bash tests/bench/guest.sh" || rc=$?
sleep 1
mpw_vm_unfollow
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
echo "other_qemu_during=$(cat "$out/other-qemu-max.txt" 2>/dev/null || echo 0)" >> "$out/machine.txt"
echo "host_after=$(host_state)" >> "$out/machine.txt"
echo "[bench] VM run finished (status $rc); $(tail -1 "$out/machine.txt")"
judged=0
python3 "$MPW_ROOT/tests/check_results.py" "$out" > "$out/judged.txt" 2>&1 || judged=$?
sed 's/^/[bench] /' "$out/judged.txt" | tail -15
# A run that failed (a step, the kernel log, or the VM ending early) has partial tables: they
# go to $out/results.md only, unless MPW_BENCH_DOC=1.
if [ $rc = 0 ] && [ $judged = 0 ] || [ "${MPW_BENCH_DOC:-}" = 1 ]; then
	python3 "$MPW_ROOT/scripts/bench-report.py" "$out" "$MPW_ROOT/docs/benchmarks.md" || exit 1
else
	python3 "$MPW_ROOT/scripts/bench-report.py" "$out" || exit 1
	echo "[bench] docs/benchmarks.md left alone: the run failed (VM status $rc, results" \
		"judged $judged); its tables are in $out/results.md"
fi
[ $rc = 0 ] && [ $judged = 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lifecycle stress, inside the test VM (hardware set up, modules loaded): N rounds of the
# operations that race with userspace, cycling through
#   create/remove, open/close, remove while open, VF unbind while open, two creates and two
#   opens at once, module unload with an mdev present (and refused while open), and every
#   tenth round sriov_numvfs=0 (igb) while open.
# Prints progress every 10% and a summary line; exits non-zero on any failed round. After the
# rounds the NVMe VF must still complete an Identify by DMA through a fresh mdev.
#
# usage: lifecycle.sh N

set -u
n="${1:-20}"
root="${MPW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$root/tests/guest/lib.sh"
. "$MPW_HW_ENV"
client="${MPW_CLIENT:-$root/tests/client/target/release/mpw-vfio-client}"
vf="${NVME_VFS[1]}"
igbvf="${IGB_VFS[1]}"
T="/sys/class/mdev_bus/$vf/mdev_supported_types/mpw_sample-vf"
fails=0
start=$(date +%s)
log="$(mktemp)"

say() { echo "[stress] $*"; }
fail() { say "round $i ($1): FAILED: $2"; fails=$((fails + 1)); }

# new_mdev: create an mdev on $vf; prints its sysfs path.
new_mdev() {
	local u
	u="$(uuidgen)"
	echo "$u" > "$T/create" || return 1
	echo "/sys/bus/mdev/devices/$u"
}

# held CLIENT_ARGS...: start the client in the background until it prints `held`.
held() {
	: > "$log"
	"$client" "$@" > "$log" 2>&1 &
	pid=$!
	wait_held "$log" "$pid" 30
}

rebind_sample() {
	[ "$(pci_driver "$vf")" = mpw_sample ] || bind_to mpw_sample "$vf"
}

round() {
	local d d2 r1 r2
	case $((i % 7)) in
	0) # create and remove
		d="$(new_mdev)" || { fail create "create refused"; return; }
		echo 1 > "$d/remove" || fail create "remove refused"
		;;
	1) # open and close (two resets)
		d="$(new_mdev)" || { fail open "create refused"; return; }
		timeout 60 "$client" cdev-open "$d" read:0:0:8 > "$log" 2>&1 ||
			fail open "client: $(tail -1 "$log")"
		echo 1 > "$d/remove"
		;;
	2) # remove while open: the REQ eventfd asks the client to close
		d="$(new_mdev)" || { fail remove-open "create refused"; return; }
		held req-wait "$d" 30 || { fail remove-open "client did not hold: $(cat "$log")"; kill $pid; wait $pid; echo 1 > "$d/remove"; return; }
		timeout 60 sh -c "echo 1 > $d/remove" || fail remove-open "remove did not return"
		wait $pid || fail remove-open "client: $(tail -1 "$log")"
		[ ! -e "$d" ] || fail remove-open "mdev still there"
		;;
	3) # VF unbind while open: the PCI driver's remove waits for the client
		d="$(new_mdev)" || { fail unbind-open "create refused"; return; }
		held req-wait "$d" 30 || { fail unbind-open "client did not hold"; kill $pid; wait $pid; echo 1 > "$d/remove"; return; }
		timeout 60 sh -c "echo $vf > /sys/bus/pci/drivers/mpw_sample/unbind" ||
			fail unbind-open "unbind did not return"
		wait $pid || fail unbind-open "client: $(tail -1 "$log")"
		[ ! -e "$d" ] || fail unbind-open "mdev still there"
		rebind_sample || fail unbind-open "rebind failed"
		;;
	4) # two at once: two creates (one wins), two opens of one mdev (one wins)
		(echo "$(uuidgen)" > "$T/create") 2>/dev/null & r1=$!
		(echo "$(uuidgen)" > "$T/create") 2>/dev/null & r2=$!
		wait $r1; r1=$?
		wait $r2; r2=$?
		[ $((r1 + r2)) -ne 0 ] && [ $r1 = 0 -o $r2 = 0 ] || fail two "creates: $r1 $r2 (exactly one must win)"
		d="/sys/bus/mdev/devices/$(ls /sys/bus/mdev/devices | head -1)"
		timeout 60 "$client" cdev-open "$d" > "$log.1" 2>&1 & r1=$!
		timeout 60 "$client" cdev-open "$d" > "$log.2" 2>&1 & r2=$!
		wait $r1; r1=$?
		wait $r2; r2=$?
		[ $r1 = 0 -o $r2 = 0 ] || fail two "opens: neither worked: $(tail -1 "$log.1") $(tail -1 "$log.2")"
		for d2 in /sys/bus/mdev/devices/*; do [ -e "$d2" ] && echo 1 > "$d2/remove"; done
		;;
	5) # module unload: refused while open, removes the mdev when not
		d="$(new_mdev)" || { fail unload "create refused"; return; }
		held hold "$d" 5 || { fail unload "client did not hold"; kill $pid; wait $pid; echo 1 > "$d/remove"; return; }
		if rmmod mpw_sample 2>/dev/null; then
			fail unload "rmmod succeeded while the device was open"
		fi
		wait $pid
		rmmod mpw_sample || fail unload "rmmod failed with the mdev closed"
		[ ! -e "$d" ] || fail unload "mdev still there after rmmod"
		modprobe mpw_sample || fail unload "modprobe failed"
		rebind_sample || fail unload "rebind failed"
		;;
	6) # every other time: igb sriov_numvfs=0 while one of its VFs is open
		if [ $((i % 14)) != 6 ]; then
			d="$(new_mdev)" && echo 1 > "$d/remove"
			return
		fi
		bind_to mpw_sample "$igbvf" || { fail numvfs "wrapping $igbvf failed"; return; }
		d2="/sys/bus/mdev/devices/$(uuidgen)"
		echo "$(basename "$d2")" > "/sys/class/mdev_bus/$igbvf/mdev_supported_types/mpw_sample-vf/create" ||
			{ fail numvfs "create refused"; return; }
		held req-wait "$d2" 30 || { fail numvfs "client did not hold"; kill $pid; wait $pid; return; }
		timeout 90 sh -c "echo 0 > /sys/bus/pci/devices/$IGB_PF/sriov_numvfs" ||
			fail numvfs "sriov_numvfs=0 did not return"
		wait $pid || fail numvfs "client: $(tail -1 "$log")"
		echo 2 > "/sys/bus/pci/devices/$IGB_PF/sriov_numvfs" || fail numvfs "VFs not recreated"
		;;
	esac
}

rebind_sample || { say "cannot wrap $vf"; exit 1; }
say "$n rounds on $vf (and $igbvf, $IGB_PF)"
for i in $(seq 1 "$n"); do
	round
	if [ $((i % ((n + 9) / 10))) = 0 ]; then
		say "$i/$n rounds, $fails failed, $(( $(date +%s) - start )) s"
	fi
done

# The device still works: Identify by DMA through a fresh mdev. (nvme-identify then makes
# the controller DMA to an IOVA it unmapped: the IOMMU fault is expected.)
for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && echo 1 > "$d/remove"; done
expect_splats_begin dmar-fault
d="$(new_mdev)" && out="$(timeout 120 "$client" nvme-identify "$d" 2>&1)"
echo 1 > "$d/remove" 2>/dev/null
expect_splats_end dmar-fault
status="$(kv identify_status "${out:-}")"
[ "$status" = 0x0 ] || { say "NVMe Identify after the rounds: ${out:-no mdev}"; fails=$((fails + 1)); }
unbind_override "$vf"
rm -f "$log" "$log.1" "$log.2"
say "summary: $n rounds, $fails failed, identify_after=$status, $(( $(date +%s) - start )) s"
[ $fails = 0 ]

# SPDX-License-Identifier: GPL-2.0
#
# Which functions the library wraps (as vfio_pci_core_register_device): not a bridge (header
# type 1), not a PF with SR-IOV enabled (its VFs would sit under a user's resets and config
# writes). Runs last: it takes the NVMe PF from its driver, and QEMU's NVMe PF takes its
# secondary controllers offline when its controller is reset (hw/nvme/ctrl.c,
# nvme_ctrl_reset), which the PF's re-probe does.
#
# With MPW_KMEMLEAK_LATE=1, run after the tools' tests, with kmemleak off (run-tests.sh): the
# NVMe VFs do not come back from the PF's re-probe, and the tools' tests need them.
# mpw-kmemleak: off

sysfs_write() { # VALUE FILE
	echo "$1" > "$2"
}

test_bridge_is_refused() {
	local br drv mark bound log
	br="$(basename "$(dirname "$(readlink -f "/sys/bus/pci/devices/$EDU")")")"
	expect_file "the bridge above edu ($br)" "/sys/bus/pci/devices/$br/config" || return 1
	expect_eq "$br header type (setpci)" 1 $(( 16#$(setpci -s "$br" 0e.b) & 0x7f )) || return 1
	drv="$(pci_driver "$br")"
	mark="mpw-test-bridge-$RANDOM"; echo "$mark" > /dev/kmsg
	echo mpw_sample > "/sys/bus/pci/devices/$br/driver_override"
	[ -z "$drv" ] || echo "$br" > "/sys/bus/pci/drivers/$drv/unbind"
	run_limited 60 "probe $br" sysfs_write "$br" /sys/bus/pci/drivers_probe 2>/dev/null
	bound="$(pci_driver "$br")"
	log="$(dmesg_since "$mark")"
	# Back to what it was.
	[ "$bound" != mpw_sample ] || echo "$br" > /sys/bus/pci/drivers/mpw_sample/unbind
	echo > "/sys/bus/pci/devices/$br/driver_override"
	echo "$br" > /sys/bus/pci/drivers_probe 2>/dev/null
	expect_ne "driver of $br after a probe with driver_override mpw_sample" mpw_sample "$bound" || return 1
	expect_ok "the library said why" grep -q "refusing to wrap a function with header type 0x1" <<< "$log" || return 1
	expect_eq "$br driver afterwards" "$drv" "$(pci_driver "$br")" || return 1
	expect_eq "edu still behind $br" "$br" "$(basename "$(dirname "$(readlink -f "/sys/bus/pci/devices/$EDU")")")"
}

# pf_ctrl_live: the NVMe PF has a live controller.
pf_ctrl_live() {
	local c=("/sys/bus/pci/devices/$NVME_PF"/nvme/nvme*) s
	[ -e "${c[0]}" ] && read -r s < "${c[0]}/state" && [ "$s" = live ]
}

# nvme_ctrl_settled CTRL: the NVMe controller (sysfs) is live, or dead.
nvme_ctrl_settled() {
	grep -qxE 'live|dead|deleting|deleting \(no IO\)' "$1/state"
}

# nvme_vfs_back: best effort, QEMU took the secondary controllers offline when the PF's
# controller was reset: online them again (nvme virt-mgmt, as setup-hw.sh) and reset the VFs'
# controllers. Prints what it found as TAP diagnostics.
nvme_vfs_back() {
	local c=("/sys/bus/pci/devices/$NVME_PF"/nvme/nvme*) ctrl scid vf v s
	ctrl="/dev/${c[0]##*/}"
	for scid in $(run_limited 60 "nvme list-secondary" nvme list-secondary "$ctrl" 2>/dev/null |
		awk '$1 == "SCID" { print $NF }' | head -2); do
		run_limited 60 "nvme virt-mgmt -c $scid online" nvme virt-mgmt "$ctrl" -c "$((scid))" -a 9 > /dev/null 2>&1
	done
	for vf in "${NVME_VFS[@]}"; do
		v=("/sys/bus/pci/devices/$vf"/nvme/nvme*)
		[ -e "${v[0]}" ] || continue
		echo 1 > "${v[0]}/reset_controller" 2>/dev/null
	done
	for vf in "${NVME_VFS[@]}"; do
		v=("/sys/bus/pci/devices/$vf"/nvme/nvme*)
		s=absent
		# (A controller the VF's driver disabled after its reset failed is dead for good: no
		# use waiting for it.)
		[ -e "${v[0]}" ] && wait_until 30 nvme_ctrl_settled "${v[0]}"
		[ -e "${v[0]}" ] && read -r s < "${v[0]}/state"
		echo "# NVMe VF $vf: driver $(pci_driver "$vf"), controller ${v[0]##*/} $s"
	done
}

test_pf_with_sriov_enabled_is_refused() {
	local pf="$NVME_PF" pfs="/sys/bus/pci/devices/$NVME_PF" mark bound n log rc=0 i
	expect_eq "$pf sriov_numvfs before" 2 "$(< "$pfs/sriov_numvfs")" || return 1
	expect_eq "$pf driver before" nvme "$(pci_driver "$pf")" || return 1
	mark="mpw-test-pf-$RANDOM"; echo "$mark" > /dev/kmsg
	run_limited 60 "unbind nvme from $pf" sysfs_write "$pf" /sys/bus/pci/drivers/nvme/unbind || rc=1
	n="$(< "$pfs/sriov_numvfs")"
	if [ $rc = 0 ] && [ "$n" = 2 ]; then
		echo mpw_sample > "$pfs/driver_override"
		run_limited 60 "probe $pf" sysfs_write "$pf" /sys/bus/pci/drivers_probe 2>/dev/null
	fi
	bound="$(pci_driver "$pf")"
	log="$(dmesg_since "$mark")"
	# Back to nvme, whatever happened.
	[ "$bound" != mpw_sample ] || echo "$pf" > /sys/bus/pci/drivers/mpw_sample/unbind
	echo > "$pfs/driver_override"
	[ "$(pci_driver "$pf")" = nvme ] || run_limited 120 "probe $pf" sysfs_write "$pf" /sys/bus/pci/drivers_probe 2>/dev/null
	wait_until 60 pf_ctrl_live
	nvme_vfs_back
	[ $rc = 0 ] || { echo "# unbinding nvme from $pf failed"; return 1; }
	[ "$n" = 2 ] || { echo "# cannot be tested: unbinding nvme from $pf left sriov_numvfs=$n" \
		"(the PF's driver disabled SR-IOV on remove)"; return 1; }
	expect_ne "driver of $pf after a probe with driver_override mpw_sample" mpw_sample "$bound" || return 1
	expect_ok "the library said why" grep -q "refusing to wrap a PF with SR-IOV enabled" <<< "$log" || return 1
	expect_eq "$pf back on nvme" nvme "$(pci_driver "$pf")" || return 1
	expect_ok "$pf controller live again" pf_ctrl_live || return 1
	expect_eq "$pf sriov_numvfs after" 2 "$(< "$pfs/sriov_numvfs")" || return 1
	for i in 0 1; do
		expect_eq "$pf virtfn$i" "${NVME_VFS[$i]}" "$(basename "$(readlink "$pfs/virtfn$i")")" || return 1
		expect_eq "${NVME_VFS[$i]} driver" nvme "$(pci_driver "${NVME_VFS[$i]}")" || return 1
	done
}

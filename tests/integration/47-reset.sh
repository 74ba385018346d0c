# SPDX-License-Identifier: GPL-2.0
#
# Function-level reset: VFIO_DEVICE_RESET resets the VF (FLR), and every open and close
# resets it too, so no user state survives from one user to the next (as vfio-pci).
# The register used is NVMe's CC (controller configuration, BAR0 0x14), written with the
# queue entry sizes and EN=0 (no side effect): a function-level reset clears it. (AQA, say,
# survives a reset in QEMU's model.)

test_device_reset_resets_the_vf() {
	local vf="${NVME_VFS[0]}" dev out rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" write:0:0x14:4:0x00460000 read:0:0x14:4 reset \
		read:0:0x14:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client cdev-open: $out"; return 1; }
	expect_ok "$vf has a function-level reset (lspci: FLReset+)" \
		grep -q 'FLReset+' <<< "$(lspci -vv -s "$vf")" || return 1
	expect_eq "GET_INFO says the device can reset" 1 "$(kv device_reset "$out")" || return 1
	expect_eq "CC after the write" 0x460000 "$(kv read_0_0x14 "$out")" || return 1
	expect_eq "VFIO_DEVICE_RESET" ok "$(kv reset "$out")" || return 1
	expect_eq "CC after the reset" 0x0 "$(sed -n 's/^read_0_0x14=//p' <<< "$out" | tail -1)"
}

test_the_next_user_gets_a_reset_vf() {
	local vf="${NVME_VFS[0]}" dev first second rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	first="$("$MPW_CLIENT" cdev-open "$dev" write:0:0x14:4:0x00460000 read:0:0x14:4 2>&1)" || rc=$?
	[ $rc = 0 ] && { second="$("$MPW_CLIENT" cdev-open "$dev" read:0:0x14:4 2>&1)" || rc=$?; }
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client cdev-open: $first $second"; return 1; }
	expect_eq "CC written by the first user" 0x460000 "$(kv read_0_0x14 "$first")" || return 1
	expect_eq "CC seen by the next user" 0x0 "$(kv read_0_0x14 "$second")"
}

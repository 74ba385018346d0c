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

# The next user must find neither the last user's device state (CC), nor its config-space
# writes that went to the hardware (PCIe Device Control: a function reset alone would restore
# them), nor its writes to the virtual config space (a BAR address).
test_the_next_user_gets_a_reset_vf() {
	local vf="${NVME_VFS[0]}" dev probe first second rc=0 exp dc dc0 flip
	exp="$(lspci -s "$vf" -v | sed -n 's/.*Capabilities: \[\([0-9a-f]*\)\] Express.*/\1/p')"
	expect_ne "PCIe capability of $vf" "" "$exp" || return 1
	dc=$((0x$exp + 8))
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	probe="$("$MPW_CLIENT" cdev-open "$dev" read:7:$dc:2 2>&1)" || rc=$?
	dc0="$(kv "read_7_$(printf '%#x' $dc)" "$probe")"
	# Correctable-error reporting enable: writable, harmless.
	flip=$(( ${dc0:-0} ^ 0x1 ))
	[ $rc = 0 ] && { first="$("$MPW_CLIENT" cdev-open "$dev" write:0:0x14:4:0x00460000 \
		read:0:0x14:4 write:7:$dc:2:$flip read:7:$dc:2 write:7:0x10:4:0xfebf0000 \
		read:7:0x10:4 2>&1)" || rc=$?; }
	[ $rc = 0 ] && { second="$("$MPW_CLIENT" cdev-open "$dev" read:0:0x14:4 read:7:$dc:2 \
		read:7:0x10:4 2>&1)" || rc=$?; }
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client cdev-open: $probe $first $second"; return 1; }
	expect_eq "CC written by the first user" 0x460000 "$(kv read_0_0x14 "$first")" || return 1
	expect_eq "CC seen by the next user" 0x0 "$(kv read_0_0x14 "$second")" || return 1
	expect_eq "Device Control written by the first user" "$(printf '0x%x' $flip)" \
		"$(kv "read_7_$(printf '%#x' $dc)" "$first")" || return 1
	expect_eq "Device Control seen by the next user" "$dc0" \
		"$(kv "read_7_$(printf '%#x' $dc)" "$second")" || return 1
	expect_eq "virtual BAR0 written by the first user" 0xfebf0004 "$(kv read_7_0x10 "$first")" || return 1
	expect_eq "virtual BAR0 seen by the next user" 0x4 "$(kv read_7_0x10 "$second")"
}

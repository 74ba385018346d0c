# SPDX-License-Identifier: GPL-2.0
#
# QEMU as the VFIO client: `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>` with an
# iommufd backend, as an admin would start a VM on a wrapped VF. QEMU 10.0 opens the mdev's
# cdev, binds it to iommufd, maps guest RAM into the IOAS, reads the device's regions, config
# space and interrupt indexes, and realizes a PCI device for its guest. The guest is never
# started (-S): what it would see is read back with QMP `query-pci`.

# qemu_query_pci SYSFS: start QEMU with SYSFS as device hostdev0, ask QMP for its PCI devices
# and quit; print QEMU's output and return its exit status.
qemu_query_pci() {
	local dir fd rc=0
	dir="$(mktemp -d)"
	mkfifo "$dir/qmp"
	timeout 120 qemu-system-x86_64 -machine q35,accel=tcg -nodefaults -display none \
		-m 128 -S -qmp stdio -object iommufd,id=i0 \
		-device "vfio-pci,sysfsdev=$1,iommufd=i0,id=hostdev0" < "$dir/qmp" > "$dir/out" 2>&1 &
	exec {fd}> "$dir/qmp"
	# QMP commands wait until the machine, and the device, are ready.
	printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"query-pci"}' \
		'{"execute":"quit"}' >&"$fd"
	wait $! || rc=$?
	exec {fd}>&-
	cat "$dir/out"
	rm -rf "$dir"
	return $rc
}

# json_num KEY TEXT: the first number after "KEY": in TEXT.
json_num() {
	grep -o "\"$1\": [0-9]*" <<< "$2" | head -1 | sed 's/.*: //'
}

test_qemu_realizes_the_mdev_as_a_vfio_pci_device() {
	local vf="${NVME_VFS[0]}" dev out rc=0 hostdev bar0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$(qemu_query_pci "$dev")" || rc=$?
	mdev_off "$dev" "$vf"
	# QEMU's answer for its device hostdev0: up to the end of its region list.
	hostdev="$(grep -o '"qdev_id": "hostdev0"[^]]*]' <<< "$out")"
	[ -n "$hostdev" ] || { echo "# QEMU (exit $rc) did not realize the device:"; sed 's/^/#   /' <<< "$out"; return 1; }
	expect_eq "QEMU exit status after quit" 0 "$rc" || return 1
	# The device says it can reset (FLR); QEMU resets it with VFIO_DEVICE_RESET.
	expect_ok "QEMU found a reset mechanism" \
		test -z "$(grep 'Cannot reset device' <<< "$out")" || return 1
	# The ERR index has a vector: QEMU enables AER error recovery for the device.
	expect_ok "QEMU enabled error recovery (no 'Could not enable error recovery')" \
		test -z "$(grep 'Could not enable error recovery' <<< "$out")" || return 1
	expect_eq "vendor ID the guest would see" "$((0x$(cut -c3- "/sys/bus/pci/devices/$vf/vendor")))" \
		"$(json_num vendor "$hostdev")" || return 1
	expect_eq "device ID the guest would see" "$((0x$(cut -c3- "/sys/bus/pci/devices/$vf/device")))" \
		"$(json_num device "$hostdev")" || return 1
	expect_eq "class the guest would see" "$(( $(cat "/sys/bus/pci/devices/$vf/class") >> 8 ))" \
		"$(json_num class "$hostdev")" || return 1
	bar0="$(grep -o '"bar": 0, "size": [0-9]*' <<< "$hostdev" | sed 's/.*: //')"
	expect_eq "BAR0 size the guest would see" "$(stat -c %s "/sys/bus/pci/devices/$vf/resource0")" \
		"$bar0" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

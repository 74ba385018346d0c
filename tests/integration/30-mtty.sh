# SPDX-License-Identifier: GPL-2.0
#
# The mdev core and a real VFIO client, with the mtty sample as a known-good control mdev:
# create through sysfs, open through the legacy VFIO group + type1 container, remove.

MTTY_TYPE=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2

test_mtty_mdev_create_open_remove() {
	modprobe mtty || { echo "# modprobe mtty failed"; return 1; }
	expect_file "mtty parent registered" "$MTTY_TYPE/create" || return 1
	expect_eq "mtty-2 device_api" vfio-pci "$(cat $MTTY_TYPE/device_api)" || return 1
	local before uuid dev group out
	before="$(cat $MTTY_TYPE/available_instances)"
	expect_ge "mtty-2 available_instances" 1 "$before" || return 1
	uuid="$(uuidgen)"
	echo "$uuid" > "$MTTY_TYPE/create" || { echo "# create $uuid failed"; return 1; }
	dev="/sys/bus/mdev/devices/$uuid"
	expect_file "mdev $uuid in /sys/bus/mdev/devices" "$dev" || return 1
	expect_eq "available_instances after create" "$((before - 1))" \
		"$(cat $MTTY_TYPE/available_instances)" || return 1
	expect_eq "mdev type link" mtty-2 "$(basename "$(readlink "$dev/mdev_type")")" || return 1
	group="$(basename "$(readlink "$dev/iommu_group")")"
	expect_file "VFIO group node of the mdev" "/dev/vfio/$group" || return 1

	out="$("$MPW_CLIENT" group-open "$group" "$uuid" 2>&1)" ||
		{ echo "# mpw-vfio-client group-open: $out"; return 1; }
	expect_eq "group viable" 1 "$(kv group_viable "$out")" || return 1
	expect_eq "VFIO_DEVICE_FLAGS_PCI" 1 "$(kv device_is_pci "$out")" || return 1
	expect_eq "num_regions" 9 "$(kv num_regions "$out")" || return 1
	expect_eq "num_irqs" 5 "$(kv num_irqs "$out")" || return 1
	expect_eq "config vendor ID read through the device fd" 0x4348 "$(kv config_vendor "$out")" || return 1
	expect_eq "config device ID read through the device fd" 0x3253 "$(kv config_device "$out")" || return 1

	echo 1 > "$dev/remove" || { echo "# remove failed"; return 1; }
	expect_no_file "mdev gone after remove" "$dev" || return 1
	expect_eq "available_instances after remove" "$before" "$(cat $MTTY_TYPE/available_instances)"
}

test_mtty_open_of_unknown_device_fails_cleanly() {
	local uuid dev group out rc=0
	uuid="$(uuidgen)"
	echo "$uuid" > "$MTTY_TYPE/create" || { echo "# create failed"; return 1; }
	dev="/sys/bus/mdev/devices/$uuid"
	group="$(basename "$(readlink "$dev/iommu_group")")"
	# A device name that is not in the group: the kernel must refuse it, not crash.
	out="$("$MPW_CLIENT" group-open "$group" "$(uuidgen)" 2>&1)" || rc=$?
	echo 1 > "$dev/remove"
	expect_eq "client exit status" 1 "$rc" || return 1
	expect_ok "error names the ioctl" grep -q "VFIO_GROUP_GET_DEVICE_FD" <<< "$out"
}

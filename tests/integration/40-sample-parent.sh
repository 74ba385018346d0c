# SPDX-License-Identifier: GPL-2.0
#
# The library's own parent driver (vendors/mpw_sample) wrapping real VFs: bind through
# driver_override, the mdev type in sysfs, create/remove and available_instances, and the
# VFIO device seen by a real client: info, regions, virtual config space, BAR reads.
#
# The client opens the mdev as QEMU does with `-object iommufd`: its cdev, bound to an iommufd
# context and attached to an IOAS (the only way the library accepts; see 50-dma.sh).

# sample_wrap VF: bind VF to mpw_sample; sets T (the type directory).
sample_wrap() {
	bind_to mpw_sample "$1" || { echo "# binding $1 to mpw_sample failed"; return 1; }
	T="/sys/class/mdev_bus/$1/mdev_supported_types/mpw_sample-vf"
	expect_file "mpw_sample-vf type of $1" "$T/create"
}

# sample_check_vf VF: create an mdev on VF, check it through the client, remove it.
# Extra client read requests may follow; their output is left in $OUT.
sample_check_vf() {
	local vf="$1" uuid dev rc=0
	shift
	sample_wrap "$vf" || return 1
	expect_eq "device_api" vfio-pci "$(< "$T/device_api")" || return 1
	expect_eq "type name" "Whole VF, passed through" "$(< "$T/name")" || return 1
	expect_eq "type description" \
		"The whole function: BARs mapped, DMA through the user's iommufd IOAS" \
		"$(< "$T/description")" || return 1
	expect_eq "available_instances before create" 1 "$(< "$T/available_instances")" || return 1
	uuid="$(uuidgen)"
	echo "$uuid" > "$T/create" || { echo "# create failed"; return 1; }
	dev="/sys/bus/mdev/devices/$uuid"
	expect_file "mdev $uuid" "$dev" || return 1
	expect_eq "available_instances with the mdev" 0 "$(< "$T/available_instances")" || return 1
	# One VF, one mdev: a second create must fail and change nothing.
	if echo "$(uuidgen)" > "$T/create" 2>/dev/null; then
		echo "# a second mdev was created on $vf"
		return 1
	fi
	expect_eq "mdevs after the refused create" 1 "$(ls /sys/bus/mdev/devices | wc -l)" || return 1
	expect_file "vfio-dev cdev node of the mdev" "$dev/vfio-dev" || return 1

	OUT="$("$MPW_CLIENT" cdev-open "$dev" read:7:0x10:4 "$@" 2>&1)" ||
		{ echo "# mpw-vfio-client: $OUT"; return 1; }
	expect_eq "VFIO_DEVICE_FLAGS_PCI" 1 "$(kv device_is_pci "$OUT")" || return 1
	expect_eq "num_regions" 9 "$(kv num_regions "$OUT")" || return 1
	expect_eq "num_irqs" 5 "$(kv num_irqs "$OUT")" || return 1
	# VFs read 0xffff as IDs in hardware: the mdev must show the real ones.
	expect_eq "config vendor ID = sysfs vendor of $vf" "$(cat /sys/bus/pci/devices/$vf/vendor)" \
		"$(kv config_vendor "$OUT")" || return 1
	expect_eq "config device ID = sysfs device of $vf" "$(cat /sys/bus/pci/devices/$vf/device)" \
		"$(kv config_device "$OUT")" || return 1
	local i start end size
	for i in 0 1 2 3 4 5; do
		read -r start end _ < <(sed -n "$((i + 1))p" /sys/bus/pci/devices/$vf/resource)
		size=0
		[ $((end)) -gt $((start)) ] && size=$((end - start + 1))
		expect_eq "BAR$i region size = sysfs resource size" "$(printf '0x%x' $size)" \
			"$(kv region${i}_size "$OUT")" || return 1
	done
	expect_eq "config region size" 0x1000 "$(kv region7_size "$OUT")" || return 1
	expect_eq "ROM region size (VFs have none)" 0x0 "$(kv region6_size "$OUT")" || return 1

	echo 1 > "$dev/remove" || { echo "# remove failed"; return 1; }
	expect_no_file "mdev gone after remove" "$dev" || return 1
	expect_eq "available_instances after remove" 1 "$(< "$T/available_instances")"
}

test_sample_wraps_nvme_vf() {
	local vf="${NVME_VFS[0]}" cap vs regs rc=0
	# Known values: the VF's CAP and VS registers, as nvme-cli reads them through its driver.
	regs="$(nvme show-regs "/dev/$(ls /sys/bus/pci/devices/$vf/nvme/ | head -1)" 2>&1)"
	cap="0x$(awk '$1 == "cap" { print $3 }' <<< "$regs")"
	vs="0x$(awk '$1 == "version" { print $3 }' <<< "$regs")"
	sample_check_vf "$vf" read:0:0:8 read:0:8:4 || rc=1
	unbind_override "$vf"
	[ $rc = 0 ] || return 1
	expect_eq "NVMe CAP read through the mdev BAR0" "$cap" "$(kv read_0_0x0 "$OUT")" || return 1
	expect_eq "NVMe VS read through the mdev BAR0" "$vs" "$(kv read_0_0x8 "$OUT")" || return 1
	# BAR0 is a 64-bit memory BAR: the virtual register shows its type, address 0.
	expect_eq "virtual BAR0 register" 0x4 "$(kv read_7_0x10 "$OUT")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

test_sample_wraps_igb_vf() {
	local vf="${IGB_VFS[0]}" rc=0
	# igbvf STATUS (0x8).
	sample_check_vf "$vf" read:0:8:4 || rc=1
	unbind_override "$vf"
	[ $rc = 0 ] || return 1
	expect_ne "igbvf STATUS through the mdev BAR0 (device answers)" 0xffffffff \
		"$(kv read_0_0x8 "$OUT")" || return 1
	expect_eq "VF back on igbvf" igbvf "$(pci_driver "$vf")"
}

test_sample_bar_sizing_protocol() {
	local vf="${NVME_VFS[1]}" dev out rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" write:7:0x10:4:0xffffffff \
		write:7:0x14:4:0xffffffff read:7:0x10:4 read:7:0x14:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# client: $out"; return 1; }
	# 16 KiB 64-bit BAR: all-ones write reads back ~(16K-1) | MEM64, upper half all ones.
	expect_eq "BAR0 after writing all ones" 0xffffc004 "$(kv read_7_0x10 "$out")" || return 1
	expect_eq "BAR1 (upper half) after writing all ones" 0xffffffff "$(kv read_7_0x14 "$out")"
}

test_sample_bad_region_access_is_refused() {
	local vf="${NVME_VFS[0]}" dev out rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	# Past the end of BAR0 (16 KiB): EINVAL, not a read of whatever lies beyond.
	out="$("$MPW_CLIENT" cdev-open "$dev" read:0:0x4000:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	expect_eq "client status for a read past BAR0" 1 "$rc" || return 1
	expect_ok "the error is EINVAL" grep -q "Invalid argument" <<< "$out"
}

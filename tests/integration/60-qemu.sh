# SPDX-License-Identifier: GPL-2.0
#
# QEMU as the VFIO client, and the device as QEMU's guest sees it:
# `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>` with an iommufd backend, as an admin
# would start a VM on a wrapped VF. QEMU 10.0 opens the mdev's cdev, binds it to iommufd, maps
# guest RAM into the IOAS, reads the device's regions, config space and interrupt indexes,
# and realizes a PCI device for its guest. The guest never runs (-S; nested TCG cannot boot
# one in useful time): the client plays it through QEMU's qtest protocol (`qtest-nvme`),
# as firmware and an NVMe driver would, with config cycles, BAR accesses at guest-physical
# addresses, queues in guest RAM, DMA and an MSI-X message into guest RAM. Twice: with the
# iommufd backend, and through the legacy group path libvirt uses (QEMU opens /dev/vfio/<group>
# and /dev/vfio/vfio, made iommufd's container by the opt-in, tools/mpw-vfio-container).

# With `-object iommufd` (QEMU opens the mdev's cdev and binds it to iommufd).
test_qemu_guest_drives_the_mdev_through_qtest() {
	qemu_guest_drives "${NVME_VFS[0]}" iommufd
}

# QEMU without `iommufd=`: the legacy VFIO group and /dev/vfio/vfio, which libvirt uses too,
# made iommufd's container by tools/mpw-vfio-container for the test.
test_qemu_guest_drives_the_mdev_through_the_group_path() {
	local rc=0
	"$MPW_ROOT/tools/mpw-vfio-container" enable > /dev/null || return 1
	qemu_guest_drives "${NVME_VFS[0]}" group || rc=$?
	"$MPW_ROOT/tools/mpw-vfio-container" disable > /dev/null
	return $rc
}

# qemu_guest_drives VF iommufd|group: QEMU 10 with VF's mdev at 04.0 of its guest's bus 0,
# the guest played by qtest-nvme; every check of what the guest sees and does. (Two QEMUs at
# once, one per path, took longer under TCG than one after the other.)
qemu_guest_drives() {
	local vf="$1" dev out rc=0 pf_id bar0 v hostdev
	local sys="/sys/bus/pci/devices/$vf"
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	hostdev=(-device "vfio-pci,sysfsdev=$dev,id=hostdev0,addr=04.0")
	[ "$2" = iommufd ] &&
		hostdev=(-object iommufd,id=i0 -device "vfio-pci,sysfsdev=$dev,iommufd=i0,id=hostdev0,addr=04.0")
	# The device at 04.0 of the guest's bus 0 (devfn 0x20).
	out="$(timeout 240 "$MPW_CLIENT" qtest-nvme 0x20 -machine q35 -accel tcg -m 128 \
		"${hostdev[@]}" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client qtest-nvme (exit $rc):"; sed 's/^/#   /' <<< "$out"; return 1; }
	# QEMU's own checks at realize.
	expect_ok "QEMU found a reset mechanism (no 'Cannot reset device')" \
		test -z "$(grep 'Cannot reset device' <<< "$out")" || return 1
	expect_ok "QEMU enabled error recovery (no 'Could not enable error recovery')" \
		test -z "$(grep 'Could not enable error recovery' <<< "$out")" || return 1
	# Config space through the guest's config cycles.
	expect_eq "vendor ID the guest sees" "$(cat "$sys/vendor")" "$(kv guest_vendor "$out")" || return 1
	expect_eq "device ID the guest sees" "$(cat "$sys/device")" "$(kv guest_device "$out")" || return 1
	expect_eq "class the guest sees" "$(cat "$sys/class")" "$(kv guest_class "$out")" || return 1
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
	expect_eq "Identify VID in guest RAM" "$(cat "$sys/vendor")" "$(kv identify_vid "$out")" || return 1
	expect_eq "Identify serial in guest RAM = the PF's" "$(nvme_field sn "$pf_id")" "$(kv identify_sn "$out")" || return 1
	expect_eq "Identify model in guest RAM = the PF's" "$(nvme_field mn "$pf_id")" "$(kv identify_mn "$out")" || return 1
	# The completion's interrupt: QEMU wrote MSI-X vector 0's message into guest RAM.
	expect_eq "MSI-X enabled by the guest" 1 "$(kv guest_msix_enabled "$out")" || return 1
	expect_eq "no message before the doorbell" 0x00000000 "$(kv msix_message_before "$out")" || return 1
	expect_eq "the completion's MSI-X message arrived" 1 "$(kv msix_fired "$out")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# SPDX-License-Identifier: GPL-2.0
#
# QEMU as the VFIO client, and the device as QEMU's guest sees it:
# `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>` with an iommufd backend, as an admin
# would start a VM on a wrapped VF. QEMU 10.0 opens the mdev's cdev, binds it to iommufd, maps
# guest RAM into the IOAS, reads the device's regions, config space and interrupt indexes,
# and realizes a PCI device for its guest. The guest never runs (-S; nested TCG cannot boot
# one in useful time): the client plays it through QEMU's qtest protocol (`qtest-nvme`),
# as firmware and an NVMe driver would, with config cycles, BAR accesses at guest-physical
# addresses, queues in guest RAM, DMA and an MSI-X message into guest RAM. Here with the
# iommufd backend; the same guest drives the legacy group path (QEMU opens /dev/vfio/<group>
# and /dev/vfio/vfio, made iommufd's container by tools/mpw-vfio-container) in 62-libvirt.sh,
# where libvirt starts QEMU (libvirt always uses that path).
#
# With MPW_KMEMLEAK_LATE=1, run after kmemleak's report, with kmemleak off (run-tests.sh):
# QEMU's kernel paths (cdev, iommufd, mmap, MSI-X) are 45, 50 and 55's, which kmemleak judges.
# mpw-kmemleak: off

# With `-object iommufd` (QEMU opens the mdev's cdev and binds it to iommufd).
test_qemu_guest_drives_the_mdev_through_qtest() {
	qemu_guest_drives "${NVME_VFS[0]}" iommufd
}

# qemu_guest_drives VF iommufd|group: QEMU 10 with VF's mdev at 04.0 of its guest's bus 0,
# the guest played by qtest-nvme; every check of what the guest sees and does. (Two QEMUs at
# once, one per path, took longer under TCG than one after the other.)
qemu_guest_drives() {
	local vf="$1" dev out rc=0 pf_id hostdev
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
	expect_guest_drove "$vf" "$pf_id" "$out" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# SPDX-License-Identifier: GPL-2.0
#
# The emulated hardware is what the later tests rely on.

test_igb_vfs_have_expected_ids_and_own_groups() {
	local pf_group vf groups=""
	# The 82576 offers 8 VFs; the igb driver keeps one pool for the PF and caps them at 7.
	expect_eq "igb PF $IGB_PF sriov_totalvfs" 7 "$(cat /sys/bus/pci/devices/$IGB_PF/sriov_totalvfs)" || return 1
	expect_eq "igb PF sriov_numvfs" 2 "$(cat /sys/bus/pci/devices/$IGB_PF/sriov_numvfs)" || return 1
	pf_group="$(pci_group "$IGB_PF")"
	for vf in "${IGB_VFS[@]}"; do
		expect_eq "igb VF $vf vendor" 0x8086 "$(cat /sys/bus/pci/devices/$vf/vendor)" || return 1
		expect_eq "igb VF $vf device" 0x10ca "$(cat /sys/bus/pci/devices/$vf/device)" || return 1
		expect_eq "igb VF $vf physfn" "$IGB_PF" "$(basename "$(readlink /sys/bus/pci/devices/$vf/physfn)")" || return 1
		local g
		g="$(pci_group "$vf")"
		expect_ne "igb VF $vf IOMMU group" "" "$g" || return 1
		expect_ne "igb VF $vf group differs from the PF's" "$pf_group" "$g" || return 1
		expect_eq "igb VF $vf group members" "$vf" "$(group_members "$g")" || return 1
		groups="$groups $g"
	done
	expect_eq "igb VFs in distinct groups" 2 "$(echo $groups | tr ' ' '\n' | sort -u | wc -l)"
}

test_nvme_vfs_are_usable_controllers() {
	local vf ctrl serials=""
	expect_eq "NVMe PF sriov_totalvfs" 2 "$(cat /sys/bus/pci/devices/$NVME_PF/sriov_totalvfs)" || return 1
	for vf in "${NVME_VFS[@]}"; do
		expect_eq "NVMe VF $vf vendor:device" "0x1b36:0x0010" \
			"$(cat /sys/bus/pci/devices/$vf/vendor):$(cat /sys/bus/pci/devices/$vf/device)" || return 1
		expect_eq "NVMe VF $vf group members" "$vf" "$(group_members "$(pci_group "$vf")")" || return 1
		expect_eq "NVMe VF $vf driver" nvme "$(pci_driver "$vf")" || return 1
		ctrl="$(ls /sys/bus/pci/devices/$vf/nvme/ 2>/dev/null | head -1)"
		expect_ne "NVMe VF $vf controller" "" "$ctrl" || return 1
		# A usable controller answers Identify Controller through its own admin queue.
		local id
		id="$(nvme id-ctrl "/dev/$ctrl" 2>&1)" || { echo "# nvme id-ctrl /dev/$ctrl: $id"; return 1; }
		expect_ne "NVMe VF $vf cntlid differs from the PF's (0)" 0 "$(nvme_field cntlid "$id")" || return 1
		serials="$serials $(nvme_field sn "$id")"
	done
	# VFs of one subsystem share the PF's serial number.
	expect_eq "NVMe VF serials" "MPW0NVME0001 MPW0NVME0001" "$(echo $serials)"
}

test_virtio_net_is_modern_only() {
	expect_ne "virtio-net (1af4:1041) present" "" "$VIRTIO_NET" || return 1
	expect_eq "virtio-net driver" virtio-pci "$(pci_driver "$VIRTIO_NET")" || return 1
	# A transitional device has an I/O BAR0 for the legacy interface; modern-only has none.
	local bar0_flags
	bar0_flags="$(sed -n 1p /sys/bus/pci/devices/$VIRTIO_NET/resource | awk '{print $3}')"
	expect_eq "virtio-net BAR0 is not an I/O BAR" 0 "$(( bar0_flags & 0x100 ))"
}

test_non_singleton_group_behind_bridge() {
	local g
	expect_ne "edu (1234:11e8) present" "" "$EDU" || return 1
	expect_ne "virtio-rng (1af4:1005) present" "" "$VIRTIO_RNG" || return 1
	g="$(pci_group "$EDU")"
	expect_eq "edu and virtio-rng share an IOMMU group" "$g" "$(pci_group "$VIRTIO_RNG")" || return 1
	expect_ge "devices in group $g" 2 "$(group_members "$g" | wc -l)" || return 1
	expect_eq "edu has no host driver" "" "$(pci_driver "$EDU")" || return 1
	# The other member is bound to a host DMA driver: a VF-as-mdev bind must refuse it.
	expect_eq "virtio-rng driver" virtio-pci "$(pci_driver "$VIRTIO_RNG")"
}

test_e1000e_has_msi_and_msix() {
	# A function with both MSI and MSI-X, for the exclusion test (74-aer-and-lifecycle.sh).
	expect_ne "e1000e (8086:10d3) present" "" "${E1000E:-}" || return 1
	local caps
	caps="$(lspci -v -s "$E1000E")"
	expect_ok "e1000e has MSI" grep -q "Capabilities: .* MSI: " <<< "$caps" || return 1
	expect_ok "e1000e has MSI-X" grep -q "Capabilities: .* MSI-X: " <<< "$caps" || return 1
	expect_eq "e1000e has no host driver" "" "$(pci_driver "$E1000E")"
}

# SPDX-License-Identifier: GPL-2.0
#
# Passthrough DMA: the wrapped VF is bound to the user's iommufd context and attached to the
# user's IOAS, so it DMAs to user IOVAs through the real IOMMU. The legacy type1 container,
# which never binds, is refused; IOMMU groups shared with host DMA drivers or with another
# iommufd context are refused with a message naming the reason.

test_type1_container_is_refused() {
	local vf="${NVME_VFS[0]}" dev group out rc=0 mark
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	group="$(basename "$(readlink "$dev/iommu_group")")"
	mark="mpw-test-type1-$RANDOM"; echo "$mark" > /dev/kmsg
	out="$("$MPW_CLIENT" group-open "$group" "$(basename "$dev")" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	expect_eq "client status" 1 "$rc" || return 1
	expect_ok "the device fd is refused with EOPNOTSUPP" \
		grep -q "VFIO_GROUP_GET_DEVICE_FD.*Operation not supported" <<< "$out" || return 1
	expect_ok "a dev_warn says iommufd is needed" \
		grep -q "legacy VFIO container: passthrough DMA of VF $vf needs iommufd" <<< "$(dmesg_since "$mark")"
}

test_nvme_vf_dma_through_the_users_ioas() {
	local vf="${NVME_VFS[0]}" dev out rc=0 pf_id mark
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	mark="mpw-test-dma-$RANDOM"; echo "$mark" > /dev/kmsg
	# The DMA after the unmap faults in the IOMMU on purpose.
	expect_splats_begin dmar-fault
	out="$("$MPW_CLIENT" nvme-identify "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client nvme-identify: $out"; return 1; }
	# Identify Controller, written by the VF into IOAS-mapped user memory.
	expect_eq "Identify completion status" 0x0 "$(kv identify_status "$out")" || return 1
	expect_eq "Identify VID" 0x1b36 "$(kv identify_vid "$out")" || return 1
	expect_eq "Identify serial = the PF's" "$(nvme_field sn "$pf_id")" "$(kv identify_sn "$out")" || return 1
	expect_eq "Identify model = the PF's" "$(nvme_field mn "$pf_id")" "$(kv identify_mn "$out")" || return 1
	# After IOMMU_IOAS_UNMAP the same DMA must not reach the page: the IOMMU blocks it.
	expect_eq "user page untouched after unmap" 1 "$(kv after_unmap_buffer_untouched "$out")" || return 1
	expect_ok "the IOMMU faulted the VF's write to the unmapped IOVA" \
		grep -q "DMA Write.*Request device \[$vf\] fault addr 0x300000" <<< "$(dmesg_since "$mark")"
	expect_splats_end dmar-fault
}

test_non_singleton_group_with_host_driver_is_refused() {
	local dev out rc=0 mark
	dev="$(mdev_on "$EDU")" || { mdev_off "" "$EDU"; echo "# wrapping $EDU failed"; return 1; }
	mark="mpw-test-group-$RANDOM"; echo "$mark" > /dev/kmsg
	out="$("$MPW_CLIENT" cdev-open "$dev" 2>&1)" || rc=$?
	if [ $rc = 0 ]; then
		mdev_off "$dev" "$EDU"
		echo "# the edu mdev opened although $VIRTIO_RNG (virtio-pci) shares its group"
		return 1
	fi
	expect_ok "bind fails with EBUSY" grep -q "BIND_IOMMUFD.*Device or resource busy" <<< "$out" || {
		mdev_off "$dev" "$EDU"; return 1; }
	expect_ok "the message names the blocking device" \
		grep -q "cannot give VF $EDU to userspace: $VIRTIO_RNG in its IOMMU group is bound to a host DMA driver" \
		<<< "$(dmesg_since "$mark")" || { mdev_off "$dev" "$EDU"; return 1; }
	# Without the host driver the group can go to userspace.
	echo "$VIRTIO_RNG" > "/sys/bus/pci/drivers/virtio-pci/unbind"
	out="$("$MPW_CLIENT" cdev-open "$dev" 2>&1)" || rc=$?
	echo "$VIRTIO_RNG" > /sys/bus/pci/drivers_probe
	mdev_off "$dev" "$EDU"
	expect_eq "edu config vendor once the group is free" 0x1234 "$(kv config_vendor "$out")" || return 1
	expect_eq "virtio-rng back on virtio-pci" virtio-pci "$(pci_driver "$VIRTIO_RNG")"
}

test_shared_group_needs_one_iommufd_context() {
	local a b out rc=0 mark
	a="$(mdev_on "$EDU")" || { mdev_off "" "$EDU"; echo "# wrapping $EDU failed"; return 1; }
	b="$(mdev_on "$VIRTIO_RNG")" || { mdev_off "$a" "$EDU"; mdev_off "" "$VIRTIO_RNG"; return 1; }
	mark="mpw-test-ctx-$RANDOM"; echo "$mark" > /dev/kmsg
	out="$("$MPW_CLIENT" same-group "$a" "$b" 2>&1)" || rc=$?
	mdev_off "$a" "$EDU"
	mdev_off "$b" "$VIRTIO_RNG"
	[ $rc = 0 ] || { echo "# mpw-vfio-client same-group: $out"; return 1; }
	expect_eq "both mdevs from one iommufd context" ok "$(kv same_ctx "$out")" || return 1
	expect_ok "the second context is refused" \
		grep -q "other_ctx=VFIO_DEVICE_BIND_IOMMUFD.*Operation not permitted" <<< "$out" || return 1
	expect_ok "the message says the group is used by another context" \
		grep -q "IOMMU group of VF $VIRTIO_RNG is in use by another iommufd context" \
		<<< "$(dmesg_since "$mark")"
}

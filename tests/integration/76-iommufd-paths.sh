# SPDX-License-Identifier: GPL-2.0
#
# The other iommufd paths a VMM uses, each ending in real DMA by the wrapped NVMe VF
# (Identify Controller into user memory):
#   - the legacy VFIO group API with /dev/iommu as its container (iommufd's type1
#     compatibility: VFIO_GROUP_SET_CONTAINER with an iommufd, VFIO_SET_IOMMU and
#     VFIO_IOMMU_MAP_DMA on the iommufd fd), and with /dev/vfio/vfio after the opt-in
#     (tools/mpw-vfio-container) made it iommufd's;
#   - on the cdev: detach from the IOAS (DMA blocked), attach to another IOAS, and replace the
#     IOAS while attached (the DMA then lands in the new IOAS's pages).

# dmar_fault_of VF TEXT: the IOMMU fault lines of VF in TEXT (the BDF with or without domain).
dmar_fault_of() {
	grep -E "DMA (Read|Write).*Request device \[(0000:)?${1#0000:}\]" <<< "$2"
}

test_group_with_iommufd_container_does_dma() {
	local vf="${NVME_VFS[0]}" dev out rc=0 pf_id
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	expect_file "IOMMU group of the mdev" "$dev/iommu_group" || { mdev_off "$dev" "$vf"; return 1; }
	out="$("$MPW_CLIENT" group-iommufd-identify "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client group-iommufd-identify: $out"; return 1; }
	expect_eq "group viable" 1 "$(kv group_viable "$out")" || return 1
	expect_eq "VFIO_CHECK_EXTENSION(TYPE1v2) on /dev/iommu" 1 "$(kv type1v2 "$out")" || return 1
	expect_eq "device fd from the group" ok "$(kv device_fd "$out")" || return 1
	expect_eq "Identify completion status" 0x0 "$(kv identify_status "$out")" || return 1
	expect_eq "Identify VID" 0x1b36 "$(kv identify_vid "$out")" || return 1
	expect_eq "Identify serial = the PF's" "$(nvme_field sn "$pf_id")" "$(kv identify_sn "$out")" || return 1
	expect_eq "VFIO_IOMMU_UNMAP_DMA" ok "$(kv unmap_dma "$out")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# node_rdev PATH: the major:minor of a device node, in decimal.
node_rdev() {
	printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"
}

# The opt-in for stock (VFIO_CONTAINER=y) kernels, tools/mpw-vfio-container: before it, an
# open through /dev/vfio/vfio (type1) is refused with a kernel message that names it; after
# `enable`, /dev/vfio/vfio is a mode-0666 node of /dev/iommu's major:minor and the same open
# does DMA; `disable` puts VFIO's own node back and the refusal with it.
test_opt_in_makes_dev_vfio_vfio_the_iommufd_container() {
	local vf="${NVME_VFS[0]}" dev out rc=0 mark tool="$MPW_ROOT/tools/mpw-vfio-container"
	local iommu vfio
	iommu="$(cat /sys/class/misc/iommu/dev)"
	vfio="$(cat /sys/class/misc/vfio/dev)"
	expect_eq "status before" "/dev/vfio/vfio: VFIO's type1 container (disabled: mdev_pci_wrap devices cannot open through it)" \
		"$("$tool" status 2>&1)" || return 1
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	mark="mpw-test-optin-$RANDOM"; echo "$mark" > /dev/kmsg
	out="$("$MPW_CLIENT" group-iommufd-identify "$dev" /dev/vfio/vfio 2>&1)" || rc=$?
	expect_eq "client through the type1 /dev/vfio/vfio: status" 1 "$rc" ||
		{ mdev_off "$dev" "$vf"; return 1; }
	expect_ok "the kernel message names the opt-in" \
		grep -q "legacy VFIO container: .*mpw-vfio-container enable" <<< "$(dmesg_since "$mark")" ||
		{ mdev_off "$dev" "$vf"; return 1; }
	out="$("$tool" enable 2>&1)" || { mdev_off "$dev" "$vf"; echo "# enable: $out"; return 1; }
	echo "# $out"
	expect_eq "/dev/vfio/vfio after enable: mode and major:minor (/dev/iommu's)" \
		"crw-rw-rw- $iommu" "$(stat -c '%A' /dev/vfio/vfio) $(node_rdev /dev/vfio/vfio)" ||
		{ "$tool" disable; mdev_off "$dev" "$vf"; return 1; }
	rc=0
	out="$("$MPW_CLIENT" group-iommufd-identify "$dev" /dev/vfio/vfio 2>&1)" || rc=$?
	"$tool" disable > /dev/null
	[ $rc = 0 ] || { mdev_off "$dev" "$vf"; echo "# through /dev/vfio/vfio after enable: $out"; return 1; }
	expect_eq "Identify through /dev/vfio/vfio after enable" 0x0 "$(kv identify_status "$out")" ||
		{ mdev_off "$dev" "$vf"; return 1; }
	expect_eq "/dev/vfio/vfio after disable: VFIO's own" "$vfio" "$(node_rdev /dev/vfio/vfio)" ||
		{ mdev_off "$dev" "$vf"; return 1; }
	rc=0
	"$MPW_CLIENT" group-iommufd-identify "$dev" /dev/vfio/vfio > /dev/null 2>&1 || rc=$?
	mdev_off "$dev" "$vf"
	expect_eq "refused again after disable: client status" 1 "$rc"
}

test_detach_attach_and_replace_ioas() {
	local vf="${NVME_VFS[0]}" dev out rc=0 pf_id sn mark
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	sn="$(nvme_field sn "$pf_id")"
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	mark="mpw-test-ioas-swap-$RANDOM"; echo "$mark" > /dev/kmsg
	# While detached, the VF's command fetch is blocked by the IOMMU: a DMAR fault.
	type expect_splats_begin > /dev/null 2>&1 && expect_splats_begin dmar-fault
	out="$("$MPW_CLIENT" ioas-swap "$dev" 2>&1)" || rc=$?
	type expect_splats_end > /dev/null 2>&1 && expect_splats_end dmar-fault
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client ioas-swap: $out"; return 1; }
	expect_eq "Identify through IOAS A" 0x0 "$(kv a_status "$out")" || return 1
	expect_eq "Identify serial through IOAS A" "$sn" "$(kv a_sn "$out")" || return 1
	expect_eq "VFIO_DEVICE_DETACH_IOMMUFD_PT" ok "$(kv detach "$out")" || return 1
	expect_ne "Identify while detached (must not complete)" 0x0 "$(kv detached_status "$out")" || return 1
	expect_eq "user page untouched while detached" 1 "$(kv detached_buffer_untouched "$out")" || return 1
	expect_ne "the IOMMU faulted the detached VF's DMA" "" "$(dmar_fault_of "$vf" "$(dmesg_since "$mark")")" || return 1
	expect_eq "attach to IOAS B" ok "$(kv attach_b "$out")" || return 1
	expect_eq "Identify through IOAS B" 0x0 "$(kv b_status "$out")" || return 1
	expect_eq "Identify serial through IOAS B" "$sn" "$(kv b_sn "$out")" || return 1
	expect_eq "attach to IOAS C while attached to B (replace)" ok "$(kv attach_c "$out")" || return 1
	expect_eq "Identify through IOAS C" 0x0 "$(kv c_status "$out")" || return 1
	expect_eq "Identify data in C's page" "$sn" "$(kv c_sn "$out")" || return 1
	expect_eq "B's page untouched after the replacement" 1 "$(kv c_b_page_untouched "$out")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

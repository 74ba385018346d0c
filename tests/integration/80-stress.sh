# SPDX-License-Identifier: GPL-2.0
#
# The short version of `make stress`: one of each lifecycle race (create/remove, open/close,
# remove, unbind, module unload and sriov_numvfs=0 while open, two at once), then an NVMe
# Identify by DMA through a fresh mdev. The kernel log is judged for splats as always.

test_lifecycle_stress_short() {
	local out rc=0
	out="$(bash "$MPW_ROOT/tests/stress/lifecycle.sh" 7 2>&1)" || rc=$?
	echo "$out" | tail -20
	expect_eq "lifecycle rounds (summary line)" 0 "$rc" || return 1
	expect_ok "the device still answers Identify by DMA" grep -q 'identify_after=0x0' <<< "$out"
}

# The short version of the fuzzer: random ioctls, region accesses, mmaps, SET_IRQS and config
# writes on an NVMe VF's mdev; then the device still does DMA. Random register writes may make
# the controller DMA to addresses the user never mapped: the IOMMU faults them (expected).
test_fuzz_short() {
	local vf="${NVME_VFS[1]}" dev out rc=0 id
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	# (Until the test ends: nvme-identify, too, makes the controller DMA to an IOVA it
	# unmapped.)
	type expect_splats_begin > /dev/null 2>&1 && expect_splats_begin dmar-fault
	out="$(timeout 600 "$MPW_CLIENT" fuzz "$dev" "${MPW_FUZZ_OPS:-20000}" "${MPW_FUZZ_SEED:-1}" 2>&1)" || rc=$?
	[ $rc = 0 ] && { id="$("$MPW_CLIENT" nvme-identify "$dev" 2>&1)" || rc=$?; }
	mdev_off "$dev" "$vf"
	echo "$out" | grep -v '^\[fuzz\]'
	[ $rc = 0 ] || { echo "# client: $out $id"; return 1; }
	expect_eq "operations done" "${MPW_FUZZ_OPS:-20000}" "$(kv fuzz_ops "$out")" || return 1
	expect_eq "Identify by DMA after the fuzzing" 0x0 "$(kv identify_status "$id")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

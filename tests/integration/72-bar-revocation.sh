# SPDX-License-Identifier: GPL-2.0
#
# BAR access follows the device's state, as vfio-pci's memory_lock: mmaps are fault-based and
# revoked whenever the function cannot decode or is reset; an access to a revoked mapping of a
# function that cannot decode (D3hot, memory disabled) gets SIGBUS and a pread EIO; during a
# reset, faults and BAR accesses wait until it is over. The whole BAR may be mmapped, MSI-X
# table included (region info: MSIX_MAPPABLE, no sparse areas), and an 8-byte BAR access is a
# single 64-bit access.
#
# Probes of a mapping run in a forked child of the client (mmap-probe), which reports how the
# child ended: `ok`, or `sigbus`.

# cap_off BDF PATTERN: the offset (hex, no 0x) of the standard capability lspci names PATTERN.
cap_off() {
	lspci -s "$1" -v | sed -n "s/.*Capabilities: \[\([0-9a-f]*\)\] $2.*/\1/p" | head -1
}

# msix_bar BDF: the BAR of the function's MSI-X table (lspci "Vector table: BAR=3 offset=...").
msix_bar() {
	lspci -vv -s "$1" | sed -n 's/.*Vector table: BAR=\([0-9]\).*/\1/p' | head -1
}

# edu_on / edu_off DEV: wrap edu (its IOMMU group is shared with virtio-rng, which must leave
# its host DMA driver for the group to go to userspace; see 50-dma.sh) and undo it.
edu_on() {
	echo "$VIRTIO_RNG" > /sys/bus/pci/drivers/virtio-pci/unbind
	mdev_on "$EDU" || { mdev_off "" "$EDU"; echo "$VIRTIO_RNG" > /sys/bus/pci/drivers_probe; return 1; }
}
edu_off() {
	mdev_off "$1" "$EDU"
	echo "$VIRTIO_RNG" > /sys/bus/pci/drivers_probe
}

# D3hot through PMCSR revokes the mapping: an access gets SIGBUS, a pread EIO. Back in D0,
# the same mapping works again.
test_d3_revokes_bar_mappings_and_d0_restores_them() {
	local vf pm="" dev first d3 out back rc=0 pmcsr d0
	for vf in "${NVME_VFS[0]}" "${IGB_VFS[0]}"; do
		pm="$(cap_off "$vf" 'Power Management')"
		[ -z "$pm" ] || break
	done
	[ -n "$pm" ] || { echo "# neither ${NVME_VFS[0]} nor ${IGB_VFS[0]} has a PM capability (lspci):" \
		"D3 cannot be tested"; return 1; }
	pmcsr=$((0x$pm + 4))
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	first="$("$MPW_CLIENT" cdev-open "$dev" read:7:$pmcsr:2 2>&1)" || rc=$?
	d0=$(( $(kv "read_7_$(printf '%#x' $pmcsr)" "$first") & ~3 & 0xffff ))
	d3=$(( d0 | 3 ))
	[ $rc != 0 ] || out="$("$MPW_CLIENT" mmap-probe "$dev" 0 0 4096 0 "then" \
		write:7:$pmcsr:2:$d3 sysfs:power_state 2>&1)" || rc=$?
	[ $rc != 0 ] || back="$("$MPW_CLIENT" mmap-probe "$dev" 0 0 4096 0 "then" \
		write:7:$pmcsr:2:$d3 write:7:$pmcsr:2:$d0 sysfs:power_state 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client on $vf: $first $out $back"; return 1; }
	expect_eq "$vf power_state after PMCSR D3hot" D3hot "$(kv sysfs_power_state "$out")" || return 1
	expect_eq "access to the BAR0 mapping in D3hot" sigbus "$(kv probe_after "$out")" || return 1
	expect_eq "pread of BAR0 in D3hot" EIO "$(kv pread_after "$out")" || return 1
	expect_eq "$vf power_state after PMCSR D0" D0 "$(kv sysfs_power_state "$back")" || return 1
	expect_eq "access to the BAR0 mapping back in D0" ok "$(kv probe_after "$back")" || return 1
	expect_eq "pread of BAR0 back in D0" ok "$(kv pread_after "$back")" || return 1
	expect_ne "BAR0 at 0 read through the mapping in D0 (the device answers)" 0xffffffff \
		"$(kv probe_value_after "$back")"
}

# check_reset_race KIND: reset-race on an NVMe VF's mdev with resets of KIND.
check_reset_race() {
	local vf="${NVME_VFS[0]}" dev out rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" reset-race "$dev" "$1" 8 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client reset-race $1 (status $rc): $out"; return 1; }
	echo "# reset-race $1: $(tr '\n' ' ' <<< "$out")"
	expect_eq "$1 resets made" 8 "$(kv resets "$out")" || return 1
	expect_eq "$1 resets that failed" "" "$(kv reset_errors "$out")" || return 1
	expect_ge "BAR0 reads made through the mapping" 1 "$(kv reads_total "$out")" || return 1
	# An FLR of an NVMe VF takes pcie_flr's 100 ms wait and more; if no reset took that long,
	# the resets did not happen as resets and the count below would say nothing.
	expect_ge "$1 resets of at least 100 ms (longest: $(kv reset_ms_max "$out") ms)" 1 \
		"$(kv resets_flr_long "$out")" || return 1
	# Each of them held the reader off for FLR's wait: no read completed for 90 ms (where
	# accesses did not wait, reads complete every few microseconds).
	expect_eq "$1 resets in which BAR0 reads went on" 0 "$(kv resets_not_held "$out")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

test_device_reset_blocks_bar_access() {
	check_reset_race ioctl
}

test_virtual_flr_blocks_bar_access() {
	check_reset_race flr
}

# check_whole_bar VF REGION: mmap REGION whole, read every page; the region info says MMAP,
# has MSIX_MAPPABLE (3) and no sparse areas (1).
check_whole_bar() {
	local vf="$1" region="$2" dev out rc=0 size pages
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" whole-bar-mmap "$dev" "$region" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client whole-bar-mmap $vf $region: $out"; return 1; }
	size="$(kv size "$out")"
	expect_ne "$vf BAR$region size" 0x0 "$size" || return 1
	expect_eq "$vf BAR$region region flags: MMAP" 4 $(( $(kv flags "$out") & 4 )) || return 1
	expect_ok "$vf BAR$region region info has MSIX_MAPPABLE (3) (caps: $(kv caps "$out"))" \
		grep -q ',3,' <<< ",$(kv caps "$out")," || return 1
	expect_ok "$vf BAR$region region info has no sparse-mmap areas (1) (caps: $(kv caps "$out"))" \
		test -z "$(grep ',1,' <<< ",$(kv caps "$out"),")" || return 1
	expect_eq "mmap of the whole BAR$region" ok "$(kv mmap "$out")" || return 1
	pages=$(( (size + 4095) / 4096 ))
	expect_eq "pages of BAR$region" "$pages" "$(kv pages "$out")" || return 1
	expect_eq "reading every page of the mapping" ok "$(kv probe "$out")" || return 1
	expect_eq "pages read" "$pages" "$(kv read_ok "$out")"
}

# The NVMe VF's BAR0 (16 KiB) holds its MSI-X table and PBA; the igb VF's MSI-X BAR is BAR3.
test_whole_bar_mmap_including_msix() {
	local bar
	expect_eq "NVMe VF MSI-X table BAR (lspci)" 0 "$(msix_bar "${NVME_VFS[0]}")" || return 1
	check_whole_bar "${NVME_VFS[0]}" 0 || return 1
	bar="$(msix_bar "${IGB_VFS[0]}")"
	expect_ne "igb VF MSI-X table BAR (lspci)" "" "$bar" || return 1
	check_whole_bar "${IGB_VFS[0]}" "$bar"
}

# 8-byte preads/pwrites of a BAR are one 64-bit access. NVMe CAP: the 8-byte read is the two
# 4-byte reads combined. edu's DMA source register (0x80) only takes a 64-bit value from one
# 8-byte access (a 4-byte write at 0x80 clears the upper half; one at 0x84 is ignored, and a
# 4-byte read at 0x84 returns all ones).
test_8_byte_bar_access_is_one_access() {
	local vf="${NVME_VFS[0]}" dev out rc=0 q lo hi
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" read:0:0:8 read:0:0:4 read:0:4:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client cdev-open: $out"; return 1; }
	q="$(kv read_0_0x0 "$out")"
	lo="$(sed -n 's/^read_0_0x0=//p' <<< "$out" | tail -1)"
	hi="$(kv read_0_0x4 "$out")"
	expect_eq "NVMe CAP by one 8-byte read = the two 4-byte reads" "$(printf '%#x' $(( (hi << 32) | lo )))" "$q" || return 1
	dev="$(edu_on)" || { echo "# wrapping $EDU failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" write:7:0x4:2:0x2 write:0:0x80:8:0x1122334455667788 \
		read:0:0x80:8 write:0:0x80:8:0 2>&1)" || rc=$?
	edu_off "$dev"
	[ $rc = 0 ] || { echo "# mpw-vfio-client cdev-open (edu): $out"; return 1; }
	expect_eq "edu DMA source after one 8-byte write, by one 8-byte read" 0x1122334455667788 \
		"$(kv read_0_0x80 "$out")" || return 1
	expect_eq "virtio-rng back on virtio-pci" virtio-pci "$(pci_driver "$VIRTIO_RNG")"
}

# On a function that is not a VF, memory-enable is real: clearing it revokes the mapping
# (SIGBUS, EIO); setting it again makes the mapping work again.
test_memory_disable_revokes_on_a_pf() {
	local dev off on rc=0
	dev="$(edu_on)" || { echo "# wrapping $EDU failed"; return 1; }
	off="$("$MPW_CLIENT" mmap-probe "$dev" 0 0 4096 0 write:7:0x4:2:0x2 "then" write:7:0x4:2:0x0 2>&1)" || rc=$?
	[ $rc != 0 ] || on="$("$MPW_CLIENT" mmap-probe "$dev" 0 0 4096 0 write:7:0x4:2:0x2 "then" \
		write:7:0x4:2:0x0 write:7:0x4:2:0x2 2>&1)" || rc=$?
	edu_off "$dev"
	[ $rc = 0 ] || { echo "# mpw-vfio-client mmap-probe (edu): $off $on"; return 1; }
	expect_eq "edu ID register through the mapping (memory enabled)" 0x10000ed "$(kv probe_before "$off")" || return 1
	expect_eq "access to the mapping with memory disabled" sigbus "$(kv probe_after "$off")" || return 1
	expect_eq "pread with memory disabled" EIO "$(kv pread_after "$off")" || return 1
	expect_eq "access to the mapping with memory enabled again" ok "$(kv probe_after "$on")" || return 1
	expect_eq "edu ID register through the mapping again" 0x10000ed "$(kv probe_value_after "$on")" || return 1
	expect_eq "pread with memory enabled again" ok "$(kv pread_after "$on")" || return 1
	expect_eq "virtio-rng back on virtio-pci" virtio-pci "$(pci_driver "$VIRTIO_RNG")"
}

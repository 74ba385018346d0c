# SPDX-License-Identifier: GPL-2.0
#
# The vendor surface, through the test vendor (tests/vendor/mpw_test_vendor.rs) on an NVMe
# VF: its config-space edits (IDs, subsystem IDs, revision, a hidden and an added
# capability), its trapped BAR range (left out of the mmap, accesses to its handlers, the
# doorbells passed on so that an NVMe Identify by DMA still completes), its hooks (open,
# close, reset), interrupts it raises itself and its access to the user's IOVAs.

# The test vendor's registers in BAR0 (see its module documentation).
COUNTERS=0x1008
DOORBELLS_IRQ=0x100c
DMA_IOVA=0x1010

# vendor_on: wrap the first NVMe VF with the test vendor; prints the mdev's sysfs path.
vendor_on() {
	mdev_on "${NVME_VFS[0]}" mpw_test_vendor || { mdev_off "" "${NVME_VFS[0]}"; return 1; }
}

# vendor_probe COMMAND [ARG...] -- KEY=VALUE...: runs `mpw-vfio-client COMMAND <mdev> ARG...`
# on the first NVMe VF wrapped by the test vendor, then checks each KEY=VALUE of its output.
vendor_probe() {
	local cmd="$1" vf="${NVME_VFS[0]}" dev out rc=0 args=() pair
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" "$cmd" "$dev" "${args[@]}" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client $cmd on $vf: $out"; return 1; }
	for pair in "$@"; do
		expect_eq "${pair%%=*}" "${pair#*=}" "$(kv "${pair%%=*}" "$out")" || return 1
	done
}

test_vendor_edits_the_config_space() {
	local vf="${NVME_VFS[0]}" dev out caps rc=0 last pos
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" config-caps "$dev" 2>&1)" || rc=$?
	caps="$(kv user_caps "$out")"
	last="${caps##* }"
	pos="${last#*@}"
	[ $rc != 0 ] || [ -z "$pos" ] || out="$out
$("$MPW_CLIENT" cdev-open "$dev" read:7:0:4 read:7:0x2c:4 read:7:8:1 hw:0x2c:4 hw:0:4 \
		read:7:$pos:4 read:7:$((pos + 8)):4 write:7:$((pos + 4)):1:0xa5 read:7:$((pos + 4)):1 \
		write:7:$((pos + 8)):4:0 read:7:$((pos + 8)):4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client on $vf: $out"; return 1; }
	echo "# hardware capabilities: $(kv hw_caps "$out"); the user's: $caps"
	expect_eq "IDs the user reads" 0x7e571b36 "$(kv read_7_0x0 "$out")" || return 1
	expect_eq "subsystem IDs the user reads" 0x17e57 "$(kv read_7_0x2c "$out")" || return 1
	expect_eq "revision the user reads" 0x7e "$(kv read_7_0x8 "$out")" || return 1
	expect_ne "the hardware's subsystem IDs (unchanged)" 0x17e57 "$(kv hw_0x2c "$out")" || return 1
	expect_eq "the hardware's IDs (a VF's: all ones)" 0xffffffff "$(kv hw_0x0 "$out")" || return 1
	expect_ok "the PM capability ($(kv hw_caps "$out")) is hidden from the user ($caps)" \
		test -z "$(grep -o '0x01@' <<< "$caps")" || return 1
	expect_eq "the added capability is last in the chain" 0x09 "${last%@*}" || return 1
	expect_eq "its header: ID 9, next 0, length 12" 0xc0009 "$(kv "read_7_$(printf '%#x' "$pos")" "$out")" || return 1
	local w="read_7_$(printf '%#x' $((pos + 4)))" d="read_7_$(printf '%#x' $((pos + 8)))"
	expect_eq "its writable byte after writing 0xa5" 0xa5 "$(sed -n "s/^$w=//p" <<< "$out" | tail -1)" || return 1
	expect_eq "its read-only bytes (\"7E57\"), before and after a write of 0" \
		"0x37354537 0x37354537" "$(sed -n "s/^$d=//p" <<< "$out" | tr '\n' ' ' | sed 's/ $//')"
}

test_vendor_traps_a_bar_range() {
	local vf="${NVME_VFS[0]}" dev out rc=0 mm
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" mmap:0:0:4096 mmap:0:0x2000:4096 2>&1)" || rc=$?
	mm="$("$MPW_CLIENT" cdev-open "$dev" mmap:0:0x1000:4096 2>&1)"
	# (nvme-identify ends with a DMA to an IOVA it unmapped: the IOMMU fault is expected.)
	expect_splats_begin dmar-fault
	[ $rc != 0 ] || out="$out
$("$MPW_CLIENT" nvme-identify "$dev" 2>&1)" || rc=$?
	[ $rc != 0 ] || out="$out
$("$MPW_CLIENT" cdev-open "$dev" read:0:$DOORBELLS_IRQ:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client on $vf: $out"; return 1; }
	expect_eq "BAR0 sparse-mmap areas: all but the trapped page" "0x0+0x1000,0x2000+0x2000" \
		"$(kv region0_sparse "$out")" || return 1
	expect_ne "mmap of BAR0's first page" "" "$(kv mmap_0_0x0 "$out")" || return 1
	expect_ne "mmap of BAR0's page 0x2000" "" "$(kv mmap_0_0x2000 "$out")" || return 1
	expect_ok "mmap of the trapped page is refused (mmap_0_0x1000_error=$(kv mmap_0_0x1000_error "$mm"))" \
		grep -q 'Invalid argument' <<< "$(kv mmap_0_0x1000_error "$mm")" || return 1
	expect_eq "NVMe Identify through the trapped doorbells" 0x0 "$(kv identify_status "$out")" || return 1
	# Identify: one submission doorbell and one completion doorbell, twice (the command is
	# issued again after the unmap).
	expect_ge "doorbell writes the vendor saw" 2 "$(( $(kv "read_0_$DOORBELLS_IRQ" "$out") ))"
}

test_vendor_hooks_run() {
	local vf="${NVME_VFS[0]}" dev out rc=0 c1 c2
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" read:0:$COUNTERS:4 2>&1)" || rc=$?
	[ $rc != 0 ] || out="$out
$("$MPW_CLIENT" cdev-open "$dev" reset reset read:0:$COUNTERS:4 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client on $vf: $out"; return 1; }
	c1="$(sed -n "s/^read_0_$COUNTERS=//p" <<< "$out" | head -1)"
	c2="$(sed -n "s/^read_0_$COUNTERS=//p" <<< "$out" | tail -1)"
	expect_eq "opens, closes, resets in the first open" "1 0 0" \
		"$(( c1 >> 24 )) $(( (c1 >> 16) & 255 )) $(( (c1 >> 8) & 255 ))" || return 1
	expect_eq "opens, closes, resets after two VFIO_DEVICE_RESETs in the second" "2 1 2" \
		"$(( c2 >> 24 )) $(( (c2 >> 16) & 255 )) $(( (c2 >> 8) & 255 ))"
}

test_vendor_raises_an_interrupt() {
	local vf="${NVME_VFS[0]}" dev out rc=0 no
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" irq-trigger "$dev" msix write:0:$DOORBELLS_IRQ:4:0 2>&1)" || rc=$?
	no="$("$MPW_CLIENT" cdev-open "$dev" write:0:$DOORBELLS_IRQ:4:0 2>&1)"
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client irq-trigger on $vf: $out"; return 1; }
	expect_eq "MSI-X vector 0 raised by the vendor reached the user's eventfd" 1 \
		"$(kv irq_fired "$out")" || return 1
	expect_ok "without an eventfd the vendor's write fails with EIO ($(tr '\n' ' ' <<< "$no"))" \
		grep -q 'EIO\|Input/output error' <<< "$no"
}

# A reset of the function the host asks for (sysfs `reset`: the PCI core announces it with
# reset_prepare/reset_done) while the device is open revokes BAR access for its duration,
# and the vendor hears of it (reset_done); the device works afterwards.
test_host_reset_of_an_open_device() {
	local vf="${NVME_VFS[0]}" dev out rc=0 pid c mark="mpw-host-reset-$$"
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	echo "$mark" > /dev/kmsg
	"$MPW_CLIENT" cdev-open "$dev" read:0:0:4 sleep:6000 read:0:$COUNTERS:4 read:0:0:4 \
		> "$MPW_OUT/host-reset.out" 2>&1 &
	pid=$!
	sleep 3
	echo 1 > "/sys/bus/pci/devices/$vf/reset" || rc=$?
	wait $pid || rc=$?
	out="$(< "$MPW_OUT/host-reset.out")"
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# host reset of $vf or mpw-vfio-client (status $rc): $out"; return 1; }
	c="$(kv "read_0_$COUNTERS" "$out")"
	expect_eq "resets the vendor heard of (reset_done)" 1 "$(( (c >> 8) & 255 ))" || return 1
	expect_ok "the kernel log says BAR access was revoked during the host's reset" \
		grep -q "being reset by the host" <<< "$(dmesg_since "$mark")" || return 1
	expect_eq "BAR0 at 0 read the same before and after the reset" \
		"$(sed -n 's/^read_0_0x0=//p' <<< "$out" | head -1)" \
		"$(sed -n 's/^read_0_0x0=//p' <<< "$out" | tail -1)"
}

# The test vendor's virtual I/O BAR2 (32 bytes): a region the user reads and writes (never
# maps), sized as an I/O BAR through config space, whose accesses reach the vendor.
test_vendor_virtual_io_bar() {
	local vf="${NVME_VFS[0]}" dev out rc=0
	dev="$(vendor_on)" || { echo "# wrapping $vf with mpw_test_vendor failed"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" read:2:0:4 write:2:4:4:0xdeadbeef read:2:4:4 \
		read:2:6:2 write:2:0x1f:1:0x5a read:2:0x1c:4 write:7:0x18:4:0xffffffff read:7:0x18:4 \
		2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client on $vf: $out"; return 1; }
	expect_eq "region 2 size" 0x20 "$(kv region2_size "$out")" || return 1
	expect_eq "region 2 flags: read, write, no mmap" 0x3 "$(kv region2_flags "$out")" || return 1
	expect_eq "the vendor's first register" 0x7e570000 "$(kv read_2_0x0 "$out")" || return 1
	expect_eq "a register written through the region reads back" 0xdeadbeef "$(kv read_2_0x4 "$out")" || return 1
	expect_eq "its upper half, by a 2-byte read" 0xdead "$(kv read_2_0x6 "$out")" || return 1
	expect_eq "a 1-byte write at the last byte" 0x5a000000 "$(kv read_2_0x1c "$out")" || return 1
	expect_eq "BAR2 sized through config space: a 32-byte I/O BAR" 0xffffffe1 "$(kv read_7_0x18 "$out")"
}

# The test vendor's emulated INTx line (its register 0x1008 sets the level), through
# vfio-pci's INTx protocol: one vector (EVENTFD|MASKABLE|AUTOMASKED), pin INTA, signalled on
# assertion and masked until unmasked, signalled again on unmask while still asserted,
# held back while masked or while the user sets INTx-disable, STATUS's interrupt bit following
# the line, loopback, nothing after the trigger is removed.
test_vendor_emulated_intx() {
	# VFIO_IRQ_INFO_EVENTFD 1 | MASKABLE 2 | AUTOMASKED 4. The unmask eventfd (a signal
	# unmasks, as KVM's resampler does): a line still asserted signals again; no mask eventfd
	# (as vfio-pci).
	vendor_probe intx-probe 0 $COUNTERS -- intx_count=1 intx_flags=0x7 pin=0x1 \
		unmask_before_enable=EINVAL fired_on_assert=1 status_asserted=1 \
		fired_again_while_automasked=0 fired_on_unmask_still_asserted=1 status_deasserted=0 \
		fired_on_unmask_deasserted=0 fired_on_assert_while_masked=0 fired_on_unmask_pending=1 \
		fired_with_intx_disable=0 unmask_eventfd=ok mask_eventfd=EOPNOTSUPP \
		fired_on_assert_with_unmask_eventfd=1 fired_on_unmask_eventfd_still_asserted=1 \
		fired_on_unmask_eventfd_deasserted=0 fired_on_assert_after_unmask_eventfd=1 \
		unmask_eventfd_removed=ok fired_on_removed_unmask_eventfd=0 loopback=1 \
		fired_after_disable=0
}

# Kernel access to the user's IOVAs: the vendor reads and writes the memory the user mapped
# in the IOAS the VF is attached to, follows the VF to another IOAS, and gets ENOENT when
# the VF is not attached or the IOVA is not mapped (never another IOAS's memory).
test_vendor_reads_and_writes_user_iovas() {
	vendor_probe dma-probe 0 $DMA_IOVA -- unattached=ENOENT a=ok a_seen=0x1122334455667788 \
		a_wrote=0xeeddccbbaa998877 a_offset=ok a_offset_seen=0x0 a_offset_wrote=0x0 \
		a_unmapped=ENOENT a_past_end=ENOENT b=ok b_seen=0x1122334455667788 \
		b_wrote=0xeeddccbbaa998877 b_old_iova=ENOENT detached=ENOENT
}

# A device-specific region: after the PCI ones (index 9), with its type capability, read and
# written through the vendor's hooks (8 KiB: the library passes it a page at a time), refused
# past its end, never mapped.
test_vendor_device_specific_region() {
	# flags: VFIO_REGION_INFO_FLAG_READ 1 | WRITE 2 | CAPS 8; type: PCI_VENDOR_TYPE | 0x1b36
	vendor_probe vendor-region -- num_regions=10 flags=0xb size=8192 type=0x80001b36 \
		subtype=0x7e57 initial_pattern=ok whole_readback=ok across_pages=ok \
		read_past_end=EINVAL write_at_end=EINVAL next_index=EINVAL mmap=EINVAL
}

# SPDX-License-Identifier: GPL-2.0
#
# Interrupts: VFIO_DEVICE_GET_IRQ_INFO from the VF's capabilities; MSI-X vectors enabled
# through VFIO_DEVICE_SET_IRQS, requested on the host (`mpw-msix[<n>](<VF>)` in
# /proc/interrupts) and delivered to the user's eventfds, by a real NVMe completion and by
# loopback; MSI from a wrapped edu device; malformed SET_IRQS requests; and the request (REQ) eventfd, signalled when the
# mdev is removed while userspace holds it.

# msix_table_size VF: the VF's MSI-X table size, from lspci ("MSI-X: Enable- Count=N Masked-").
msix_table_size() {
	lspci -vv -s "$1" | sed -n 's/.*MSI-X: Enable[+-] Count=\([0-9]*\).*/\1/p' | head -1
}

# msi_vectors VF: the vectors of the VF's MSI capability (lspci "MSI: Enable- Count=1/N"),
# 0 without one.
msi_vectors() {
	local n
	n="$(lspci -vv -s "$1" | sed -n 's/.*MSI: Enable[+-] Count=[0-9]*\/\([0-9]*\).*/\1/p' | head -1)"
	echo "${n:-0}"
}

# host_msix_vectors: lines of /proc/interrupts naming a vector requested for a user's MSI-X.
host_msix_vectors() {
	grep -c 'mpw-msix\[' /proc/interrupts || true
}

test_irq_info_reports_msix_table_size() {
	local vf="${NVME_VFS[0]}" dev out rc=0 size msi
	size="$(msix_table_size "$vf")"
	msi="$(msi_vectors "$vf")"
	expect_ne "MSI-X table size of $vf (lspci)" "" "$size" || return 1
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" irq-info "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client irq-info: $out"; return 1; }
	expect_eq "INTx count (VFs have no INTx)" 0 "$(kv irq0_count "$out")" || return 1
	expect_eq "INTx flags: EVENTFD|MASKABLE|AUTOMASKED" 0x7 "$(kv irq0_flags "$out")" || return 1
	expect_eq "MSI count = the VF's MSI vectors (lspci)" "$msi" "$(kv irq1_count "$out")" || return 1
	expect_eq "MSI-X count = the VF's MSI-X table size (lspci)" "$size" "$(kv irq2_count "$out")" || return 1
	expect_eq "MSI-X flags: EVENTFD|NORESIZE" 0x9 "$(kv irq2_flags "$out")" || return 1
	# A PCIe function reports AER errors to the user through the ERR eventfd (vfio-pci).
	expect_eq "ERR count (PCIe function)" 1 "$(kv irq3_count "$out")" || return 1
	expect_eq "ERR flags: EVENTFD|NORESIZE" 0x9 "$(kv irq3_flags "$out")" || return 1
	expect_eq "REQ count" 1 "$(kv irq4_count "$out")" || return 1
	expect_eq "REQ flags: EVENTFD|NORESIZE" 0x9 "$(kv irq4_flags "$out")"
}

test_nvme_vf_msix_interrupt_reaches_the_users_eventfd() {
	local vf="${NVME_VFS[0]}" dev out rc=0
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" nvme-irq "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client nvme-irq: $out"; return 1; }
	expect_eq "MSI-X enabled through VFIO_DEVICE_SET_IRQS" 1 "$(kv msix_enabled "$out")" || return 1
	expect_eq "host vectors requested (mpw-msix in /proc/interrupts)" 1 \
		"$(kv proc_interrupts_msix "$out")" || return 1
	expect_eq "Identify completion status" 0x0 "$(kv identify_status "$out")" || return 1
	# The completion raised MSI-X vector 0 on the VF; the host handler signalled the eventfd.
	expect_eq "the completion's vector 0 signalled the user's eventfd" 1 \
		"$(kv msix0_fired "$out")" || return 1
	expect_eq "SET_IRQS DATA_NONE signals the eventfd once" 1 "$(kv loopback_none "$out")" || return 1
	expect_eq "SET_IRQS DATA_BOOL 1 signals the eventfd once" 1 "$(kv loopback_bool "$out")" || return 1
	expect_eq "SET_IRQS DATA_BOOL 0 signals nothing" 0 "$(kv loopback_bool_false "$out")" || return 1
	expect_eq "Identify completion status with the eventfd detached" 0x0 \
		"$(kv after_detach_status "$out")" || return 1
	expect_eq "a detached eventfd is not signalled" 0 "$(kv after_detach_fired "$out")" || return 1
	expect_eq "host vectors after disabling MSI-X" 0 \
		"$(kv proc_interrupts_msix_after_disable "$out")" || return 1
	expect_eq "host vectors after the client closed the device" 0 "$(host_msix_vectors)"
}

test_igb_vf_msix_vectors_and_loopback() {
	local vf="${IGB_VFS[0]}" dev info out="" rc=0 n
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	info="$("$MPW_CLIENT" irq-info "$dev" 2>&1)" || rc=$?
	if [ $rc = 0 ]; then
		out="$("$MPW_CLIENT" irq-loopback "$dev" 2>&1)" || rc=$?
	fi
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client irq-info / irq-loopback: $info $out"; return 1; }
	n="$(kv irq2_count "$info")"
	expect_ge "igb VF MSI-X vectors (irq-info)" 1 "$n" || return 1
	expect_eq "MSI-X count = the VF's MSI-X table size (lspci)" "$(msix_table_size "$vf")" "$n" || return 1
	expect_eq "vectors enabled by irq-loopback = irq2_count" "$n" "$(kv msix_count "$out")" || return 1
	expect_eq "host vectors requested (mpw-msix in /proc/interrupts)" "$n" \
		"$(kv proc_interrupts_msix "$out")" || return 1
	expect_eq "DATA_NONE on the last vector signals its eventfd once" 1 \
		"$(kv loopback_last "$out")" || return 1
	expect_eq "the other vectors' eventfds are not signalled" 0 "$(kv loopback_others "$out")" || return 1
	expect_eq "host vectors after disabling MSI-X" 0 \
		"$(kv proc_interrupts_msix_after_disable "$out")" || return 1
	expect_eq "host vectors after the client closed the device" 0 "$(host_msix_vectors)"
}

# MSI (the NVMe and igb VFs only have MSI-X): the edu device, wrapped through driver_override,
# raises its MSI when BAR0 0x60 is written. Its IOMMU group is shared with virtio-rng, which
# must leave its host driver first (see 50-dma.sh).
test_msi_from_a_wrapped_function() {
	local dev out rc=0
	echo "$VIRTIO_RNG" > /sys/bus/pci/drivers/virtio-pci/unbind
	dev="$(mdev_on "$EDU")" || { mdev_off "" "$EDU"; echo "$VIRTIO_RNG" > /sys/bus/pci/drivers_probe; return 1; }
	# Memory decoding and bus mastering (an MSI is a memory write), then "raise interrupt".
	out="$("$MPW_CLIENT" irq-trigger "$dev" msi write:7:0x4:2:0x6 write:0:0x60:4:0x1 2>&1)" || rc=$?
	mdev_off "$dev" "$EDU"
	echo "$VIRTIO_RNG" > /sys/bus/pci/drivers_probe
	[ $rc = 0 ] || { echo "# mpw-vfio-client irq-trigger: $out"; return 1; }
	expect_eq "edu MSI vectors (irq-info)" "$(msi_vectors "$EDU")" "$(kv irq_count "$out")" || return 1
	expect_eq "host MSI vector requested (mpw-msi in /proc/interrupts)" 1 \
		"$(kv proc_interrupts "$out")" || return 1
	# The host enabled MSI in hardware; the user has not, and sees its own bit.
	expect_eq "MSI enable bit in the user's view of the capability" 0 \
		"$(kv user_ctrl_enable "$out")" || return 1
	expect_eq "edu's MSI signalled the user's eventfd" 1 "$(kv irq_fired "$out")" || return 1
	expect_eq "host MSI vector after disabling" 0 "$(kv proc_interrupts_after_disable "$out")" || return 1
	expect_eq "virtio-rng back on virtio-pci" virtio-pci "$(pci_driver "$VIRTIO_RNG")"
}

# check_irq_bad_args VF: irq-bad-args on an mdev of VF.
check_irq_bad_args() {
	local vf="$1" dev out rc=0 case
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	out="$("$MPW_CLIENT" irq-bad-args "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# mpw-vfio-client irq-bad-args on $vf: $out"; return 1; }
	for case in set_irqs_short_argsz set_irqs_bad_index set_irqs_intx set_irqs_beyond_count \
		set_irqs_two_data_types set_irqs_unknown_flags set_irqs_short_data \
		set_irqs_not_an_eventfd set_irqs_resize set_irqs_req_count2 \
		get_irq_info_bad_index get_irq_info_short_argsz; do
		expect_eq "$vf: $case" EINVAL "$(kv "$case" "$out")" || return 1
	done
	case="$(kv set_irqs_msi_while_msix "$out")"
	[ "$case" = skipped ] || expect_eq "$vf: set_irqs_msi_while_msix" EINVAL "$case" || return 1
	expect_eq "$vf: set_irqs_err (an ERR eventfd is taken)" ok "$(kv set_irqs_err "$out")" || return 1
	expect_eq "$vf: set_irqs_bad_fd" EBADF "$(kv set_irqs_bad_fd "$out")" || return 1
	expect_eq "$vf: set_irqs_mask_msix (no MSI-X masking, as vfio-pci)" ENOTTY \
		"$(kv set_irqs_mask_msix "$out")" || return 1
	expect_eq "$vf: set_irqs_unmask_msix (no MSI-X masking, as vfio-pci)" ENOTTY \
		"$(kv set_irqs_unmask_msix "$out")" || return 1
	expect_eq "$vf: set_irqs_enable_one" ok "$(kv set_irqs_enable_one "$out")" || return 1
	expect_eq "$vf: MSI-X enable + disable after the bad requests" ok \
		"$(kv after_bad_args_enable "$out")" || return 1
	expect_eq "$vf: host vectors after the client closed the device" 0 "$(host_msix_vectors)"
}

# The NVMe VF, with one interrupt resource, may have a 1-entry MSI-X table: its resize and
# beyond-count requests then fail the range check; the igb VF's vectors let start 1 count 1
# reach the NORESIZE check.
test_set_irqs_bad_args() {
	check_irq_bad_args "${NVME_VFS[0]}" || return 1
	check_irq_bad_args "${IGB_VFS[0]}"
}

test_remove_while_open_signals_req() {
	local vf="${NVME_VFS[0]}" dev log pid t0 t1 rc=0 out mark
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	log="$(mktemp)"
	"$MPW_CLIENT" req-wait "$dev" 60 > "$log" 2>&1 &
	pid=$!
	if ! wait_held "$log" "$pid"; then
		echo "# the client did not get hold of the device: $(< "$log")"
		kill "$pid" 2>/dev/null
		wait "$pid"
		rm -f "$log"
		mdev_off "$dev" "$vf"
		return 1
	fi
	# Removal signals the REQ eventfd; the client closes the device at once, and only then
	# does the removal return.
	mark="mpw-test-req-$RANDOM"; echo "$mark" > /dev/kmsg
	t0="$(date +%s)"
	echo 1 > "$dev/remove"
	t1="$(date +%s)"
	wait "$pid" || rc=$?
	out="$(< "$log")"
	rm -f "$log"
	if [ -e "$dev" ]; then mdev_off "$dev" "$vf"; else mdev_off "" "$vf"; fi
	[ $rc = 0 ] || { echo "# mpw-vfio-client req-wait: $out"; return 1; }
	expect_eq "the request eventfd was signalled" 1 "$(kv req_fired "$out")" || return 1
	expect_ok "the client released the device" grep -q '^released$' <<< "$out" || return 1
	expect_no_file "mdev gone after remove" "$dev" || return 1
	expect_ok "remove returned within 20 s (took $((t1 - t0)) s)" test $((t1 - t0)) -lt 20 || return 1
	expect_ok "the driver logged that it relayed the request" \
		grep -q "removal requested: relayed to userspace" <<< "$(dmesg_since "$mark")" || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# SPDX-License-Identifier: GPL-2.0
#
# BAR mmap (the VF's real pages, the whole BAR, MSI-X pages included), malformed requests,
# and removal while userspace holds the device.

# msix_layout VF: "<table BAR> <table offset> <PBA BAR> <PBA offset>" from lspci.
msix_layout() {
	lspci -vv -s "$1" | awk '
		/Vector table:/ { split($3, b, "="); split($4, o, "="); t = b[2] " 0x" o[2] }
		/PBA:/ { split($2, b, "="); split($3, o, "="); p = b[2] " 0x" o[2] }
		END { print t, p }'
}

test_whole_bar_mmap_includes_the_msix_pages() {
	local vf="${NVME_VFS[0]}" dev out rc=0 tbar toff pbar poff
	read -r tbar toff pbar poff < <(msix_layout "$vf")
	expect_eq "NVMe VF MSI-X table and PBA BAR (lspci)" "0 0" "$tbar $pbar" || return 1
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" read:0:0:4 mmap:0:0:0x4000 \
		mmap:0:"$toff":4096 mmap:0:"$poff":4096 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# client: $out"; return 1; }
	# As vfio-pci: the whole BAR may be mapped, MSI-X pages included (region info says so
	# with the MSIX_MAPPABLE capability); MSI-X stays virtual in config space.
	expect_eq "BAR0 is mmappable" 0xf "$(kv region0_flags "$out")" || return 1
	expect_eq "BAR0 has no sparse areas: all of it may be mapped" "" "$(kv region0_sparse "$out")" || return 1
	expect_eq "CAP through the whole-BAR mmap = CAP through pread" "$(kv read_0_0x0 "$out")" \
		"$(kv mmap_0_0x0 "$out")" || return 1
	expect_ne "CAP is a real register value" 0x0 "$(kv mmap_0_0x0 "$out")" || return 1
	expect_ne "the MSI-X table page maps" "" "$(kv "mmap_0_$(printf '%#x' $toff)" "$out")" || return 1
	expect_ne "the PBA page maps" "" "$(kv "mmap_0_$(printf '%#x' $poff)" "$out")"
}

test_igb_vf_msix_bar_is_mappable_whole() {
	local vf="${IGB_VFS[0]}" dev out rc=0 tbar toff pbar poff
	read -r tbar toff pbar poff < <(msix_layout "$vf")
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; return 1; }
	out="$("$MPW_CLIENT" cdev-open "$dev" read:0:0x8:4 mmap:0:0:4096:8 mmap:3:0:4096 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# client: $out"; return 1; }
	expect_eq "igbvf MSI-X table and PBA BAR (lspci)" "3 3" "$tbar $pbar" || return 1
	expect_eq "BAR3 (MSI-X) has no sparse areas" "" "$(kv region3_sparse "$out")" || return 1
	expect_eq "BAR3 is mmappable" 0xf "$(kv region3_flags "$out")" || return 1
	expect_ne "the MSI-X table page of BAR3 maps" "" "$(kv mmap_3_0x0 "$out")" || return 1
	expect_eq "BAR0 (no MSI-X) is mmappable whole" "" "$(kv region0_sparse "$out")" || return 1
	# igbvf STATUS (0x8): the same through the mmap of the VF's page as through pread.
	expect_eq "igbvf STATUS through the mmap = through pread" "$(kv read_0_0x8 "$out")" \
		"$(kv mmap_0_0x8 "$out")" || return 1
	expect_ne "igbvf STATUS is a real register value" 0xffffffff "$(kv mmap_0_0x8 "$out")"
}

test_malformed_requests_get_einval() {
	local vf="${NVME_VFS[1]}" dev out rc=0 case want
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; return 1; }
	out="$("$MPW_CLIENT" bad-args "$dev" 2>&1)" || rc=$?
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || { echo "# client: $out"; return 1; }
	for case in get_info_small_argsz region_info_index_9 region_info_small_argsz \
		irq_info_index_5 irq_info_small_argsz read_region_9 read_config_past_end \
		read_absent_bar1 write_region_9; do
		expect_eq "$case" EINVAL "$(kv "$case" "$out")" || return 1
	done
	expect_eq "unknown ioctl" ENOTTY "$(kv unknown_ioctl "$out")"
}

test_remove_while_open_waits_for_close() {
	local vf="${NVME_VFS[1]}" dev log mark
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; return 1; }
	log="$(mktemp)"
	"$MPW_CLIENT" hold "$dev" 15 > "$log" 2>&1 &
	local i=0
	while ! grep -q held "$log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	expect_ok "the client holds the device" grep -q held "$log" || { wait; mdev_off "$dev" "$vf"; return 1; }
	mark="mpw-test-remove-$RANDOM"; echo "$mark" > /dev/kmsg
	# Blocks until the client closes the device (VFIO's request semantics).
	echo 1 > "$dev/remove"
	local after
	after="$(< "$log")"
	wait
	unbind_override "$vf"
	expect_ok "remove returned only after the client released the device" \
		grep -q released <<< "$after" || return 1
	expect_no_file "mdev gone" "$dev" || return 1
	expect_ok "the driver logged the removal request" \
		grep -q "removal requested: no request eventfd, waiting for userspace to close the device" <<< "$(dmesg_since "$mark")"
}

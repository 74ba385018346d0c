# SPDX-License-Identifier: GPL-2.0
#
# Real packets through a wrapped VF. The client's userspace igbvf driver
# (`mpw-vfio-client igbvf-ping`, tests/client/src/igbvf.rs) drives igb VF 0 through its mdev:
# VF reset and the PF mailbox, an RX and a TX ring in the user's IOAS, MSI-X on eventfds. It
# talks to the igb PF's own network interface, which the emulated 82576 connects to its VFs
# inside the device (VMDq loopback, which the igb PF driver turns on with SR-IOV): an ARP
# request for the PF's address, then echo requests; the replies come back by DMA into the
# user's buffers, each with an interrupt. What the PF's network stack saw (its neighbour
# entry, its packet counters, its record of the VF's MAC address) must agree with what the
# client saw. The PF gets an address for the test and loses it afterwards.

PKT_PF_IP=10.77.0.1
PKT_VF_IP=10.77.0.2
# More echo requests than the client's 32-descriptor rings hold: both rings wrap.
PKT_COUNT=40
# The VF's MAC address when the PF administers it (`ip link set PF vf 0 mac`).
PKT_ADMIN_MAC=02:4d:50:57:0a:dd

# pkt_pf_netdev: the igb PF's network interface.
pkt_pf_netdev() {
	local n
	for n in "/sys/bus/pci/devices/$IGB_PF/net/"*; do
		[ -e "$n" ] || continue
		echo "${n##*/}"
		return 0
	done
	return 1
}

# pkt_stat IF NAME: a counter of IF (/sys/class/net/IF/statistics/NAME).
pkt_stat() {
	local v
	read -r v < "/sys/class/net/$1/statistics/$2" && echo "$v"
}

pkt_stat_ge() { # IF NAME MIN
	local v
	read -r v < "/sys/class/net/$1/statistics/$2" && [ "$v" -ge "$3" ]
}

pkt_carrier() { # IF
	local c
	read -r c 2>/dev/null < "/sys/class/net/$1/carrier" && [ "$c" = 1 ]
}

# pkt_pf_was_up IF: 1 if IF is administratively up, else 0.
pkt_pf_was_up() {
	local flags
	read -r flags < "/sys/class/net/$1/flags"
	echo $((flags & 1))
}

# pkt_pf_setup IF: IF gets $PKT_PF_IP/24 and is brought up; its carrier must come within 20 s.
# (A neighbour entry left over for the VF's IP is updated by the VF's ARP request.)
pkt_pf_setup() {
	ip addr replace "$PKT_PF_IP/24" dev "$1" || return 1
	ip link set dev "$1" up || return 1
	wait_until 20 pkt_carrier "$1" || { echo "# $1: no carrier 20 s after it was brought up"; return 1; }
}

# pkt_pf_restore IF WAS_UP: IF as it was: without the test's address and neighbours, down
# unless it was up (going down flushes the neighbours).
pkt_pf_restore() {
	ip addr del "$PKT_PF_IP/24" dev "$1" 2>/dev/null
	if [ "$2" = 1 ]; then
		ip neigh flush dev "$1" 2>/dev/null
	else
		ip link set dev "$1" down
	fi
}

# pkt_pf_vf_mac IF N: the MAC address IF's driver has for its VF N (`ip link show`:
# "vf N link/ether MAC ...").
pkt_pf_vf_mac() {
	ip link show dev "$1" | sed -n "s/^ *vf $2 .*link\/ether \([0-9a-f:]*\).*/\1/p"
}

# pkt_expect_exchange OUT N MAC PF_MAC NEIGH: what every igbvf-ping run must have seen, with
# N echo requests, the VF's address MAC, the PF's PF_MAC and the PF's neighbour entry NEIGH
# for the VF's IP.
pkt_expect_exchange() {
	local out="$1" n="$2" mac="$3" pf_mac="$4" neigh="$5"
	expect_eq "VF reset (CTRL.RST)" ok "$(kv reset "$out")" || return 1
	expect_eq "the client's MAC address" "$mac" "$(kv mac "$out")" || return 1
	expect_eq "SET_LPE acknowledged by the PF" ack "$(kv mbx_set_lpe "$out")" || return 1
	expect_eq "SET_MULTICAST acknowledged by the PF" ack "$(kv mbx_set_multicast "$out")" || return 1
	expect_eq "MSI-X vectors with eventfds" 3 "$(kv msix_vectors "$out")" || return 1
	# ARP: the PF's stack answered from its own address.
	expect_eq "ARP reply's sender MAC = the PF's" "$pf_mac" "$(kv arp_reply_mac "$out")" || return 1
	expect_eq "ARP reply's sender IP" "$PKT_PF_IP" "$(kv arp_reply_ip "$out")" || return 1
	# Every echo request answered, in order, its payload back byte for byte, both checksums
	# right, nothing else.
	expect_eq "echo requests sent" "$n" "$(kv icmp_sent "$out")" || return 1
	expect_eq "echo replies received" "$n" "$(kv icmp_received "$out")" || return 1
	expect_eq "replies with the request's sequence number" "$n" "$(kv icmp_seq_ok "$out")" || return 1
	expect_eq "replies with the request's payload, byte for byte" "$n" "$(kv icmp_payload_ok "$out")" || return 1
	expect_eq "replies with valid IP and ICMP checksums" "$n" "$(kv icmp_csum_ok "$out")" || return 1
	expect_eq "unexpected or duplicate echo replies" 0 "$(kv icmp_unexpected "$out")" || return 1
	expect_eq "RX descriptors with errors" 0 "$(kv rx_errors "$out")" || return 1
	# Interrupt-driven: the RX vector's eventfd signalled, and no frame was found without it.
	expect_ge "RX interrupts (the RX vector's eventfd)" 1 "$(kv rx_irqs "$out")" || return 1
	expect_eq "frames found without their RX interrupt" 0 "$(kv rx_frames_without_irq "$out")" || return 1
	expect_ge "TX interrupts (the TX vector's eventfd)" 1 "$(kv tx_irqs "$out")" || return 1
	expect_ge "frames sent (ARP + echo requests)" $((n + 1)) "$(kv tx_frames "$out")" || return 1
	expect_eq "TX descriptors written back (DD) = frames sent" "$(kv tx_frames "$out")" "$(kv tx_done "$out")" || return 1
	expect_ge "frames received (ARP + echo replies)" $((n + 1)) "$(kv rx_frames "$out")" || return 1
	# The VF's own counters (the device's, not the client's).
	expect_ge "the VF's good-packets-sent counter grew" $((n + 1)) "$(kv vf_gptc_delta "$out")" || return 1
	expect_ge "the VF's good-packets-received counter grew" $((n + 1)) "$(kv vf_gprc_delta "$out")" || return 1
	# The PF's stack learned the VF's address from its ARP request.
	expect_ok "the PF's neighbour entry for $PKT_VF_IP has the VF's MAC ($neigh)" \
		grep -Eq "lladdr $mac (REACHABLE|STALE|DELAY|PROBE|PERMANENT)" <<< "$neigh"
}

# pkt_expect_rings OUT N: the rings after N echo requests: both wrapped, the device's head
# and tail where the driver's indexes say.
pkt_expect_rings() {
	local out="$1" n="$2" rx_size tx_size
	rx_size="$(kv rx_ring_size "$out")"
	tx_size="$(kv tx_ring_size "$out")"
	expect_ge "RX frames > RX ring size (the ring wrapped)" $((rx_size + 1)) "$(kv rx_frames "$out")" || return 1
	expect_ge "TX frames > TX ring size (the ring wrapped)" $((tx_size + 1)) "$(kv tx_frames "$out")" || return 1
	expect_eq "RDT = the driver's next_to_use" "$(kv rx_next_to_use "$out")" "$(kv rx_tail "$out")" || return 1
	expect_eq "RDH = the driver's next_to_clean (all done taken)" "$(kv rx_next_to_clean "$out")" "$(kv rx_head "$out")" || return 1
	expect_eq "RX buffers owned by the device (all but one slot)" $((rx_size - 1)) "$(kv rx_posted "$out")" || return 1
	expect_eq "TDT = the driver's next_to_use" "$(kv tx_next_to_use "$out")" "$(kv tx_tail "$out")" || return 1
	expect_eq "TDH = TDT (all sent)" "$(kv tx_tail "$out")" "$(kv tx_head "$out")" || return 1
	expect_eq "TX next_to_clean = next_to_use (all written back)" "$(kv tx_next_to_use "$out")" \
		"$(kv tx_next_to_clean "$out")"
}

# The PF has no MAC address for the VF (its function reset at open cleared it): VF_RESET is
# answered with NACK, the client sets a locally administered address through the mailbox,
# and the PF's filter delivers it.
test_igb_vf_exchanges_frames_with_the_pf() {
	local vf="${IGB_VFS[0]}" n="$PKT_COUNT" pf dev out log pid held=0 was_up pf_mac mac rx0 tx0 rx1 tx1
	local neigh="" pf_vf_mac=""
	pf="$(pkt_pf_netdev)" || { echo "# igb PF $IGB_PF has no network interface"; return 1; }
	read -r pf_mac < "/sys/class/net/$pf/address"
	was_up="$(pkt_pf_was_up "$pf")"
	pkt_pf_setup "$pf" || { pkt_pf_restore "$pf" "$was_up"; return 1; }
	rx0="$(pkt_stat "$pf" rx_packets)"
	tx0="$(pkt_stat "$pf" tx_packets)"
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; pkt_pf_restore "$pf" "$was_up"; echo "# wrapping $vf failed"; return 1; }
	# The client keeps the device open once done (`hold`): the function's reset at close makes
	# the PF forget the VF's MAC address.
	log="$(mktemp)"
	"$MPW_CLIENT" igbvf-ping "$dev" "$PKT_VF_IP" "$PKT_PF_IP" "$n" hold 60 > "$log" 2>&1 &
	pid=$!
	if wait_held "$log" "$pid" 90; then
		held=1
		# The PF's side, before anything changes it; its counters once its replies are sent.
		neigh="$(ip neigh show "$PKT_VF_IP" dev "$pf")"
		pf_vf_mac="$(pkt_pf_vf_mac "$pf" 0)"
		wait_until 10 pkt_stat_ge "$pf" tx_packets $((tx0 + n + 1))
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	out="$(< "$log")"
	rm -f "$log"
	rx1="$(pkt_stat "$pf" rx_packets)"
	tx1="$(pkt_stat "$pf" tx_packets)"
	mdev_off "$dev" "$vf"
	pkt_pf_restore "$pf" "$was_up"
	[ $held = 1 ] || { echo "# mpw-vfio-client igbvf-ping did not finish: $out"; return 1; }
	mac="$(kv mac "$out")"
	expect_eq "VF_RESET answered with NACK (the PF has no MAC for the VF)" nack "$(kv mbx_reset "$out")" || return 1
	expect_eq "SET_MAC_ADDR acknowledged by the PF" ack "$(kv mbx_set_mac "$out")" || return 1
	expect_eq "MAC address source" own "$(kv mac_source "$out")" || return 1
	expect_eq "the PF's record of VF 0's MAC = the one set through the mailbox" "$mac" "$pf_vf_mac" || return 1
	pkt_expect_exchange "$out" "$n" "$mac" "$pf_mac" "$neigh" || return 1
	pkt_expect_rings "$out" "$n" || return 1
	# The PF's own counters: the ARP request and the echo requests in, the replies out.
	expect_ge "$pf rx_packets growth" $((n + 1)) $((rx1 - rx0)) || return 1
	expect_ge "$pf tx_packets growth" $((n + 1)) $((tx1 - tx0)) || return 1
	expect_eq "VF $vf back on igbvf" igbvf "$(pci_driver "$vf")" || return 1
	expect_eq "$pf administratively up as before (1) or down (0)" "$was_up" "$(pkt_pf_was_up "$pf")" || return 1
	expect_eq "$pf without the test's address" "" "$(ip -o addr show dev "$pf" to "$PKT_PF_IP/32")"
}

# The PF administers the VF's MAC address: VF_RESET is answered with ACK and that address,
# which the client uses without SET_MAC_ADDR.
test_igb_vf_mac_set_by_the_pf_comes_through_the_mailbox() {
	local vf="${IGB_VFS[0]}" n=3 pf dev out rc=0 was_up pf_mac neigh
	pf="$(pkt_pf_netdev)" || { echo "# igb PF $IGB_PF has no network interface"; return 1; }
	read -r pf_mac < "/sys/class/net/$pf/address"
	was_up="$(pkt_pf_was_up "$pf")"
	pkt_pf_setup "$pf" || { pkt_pf_restore "$pf" "$was_up"; return 1; }
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; pkt_pf_restore "$pf" "$was_up"; echo "# wrapping $vf failed"; return 1; }
	if ip link set dev "$pf" vf 0 mac "$PKT_ADMIN_MAC"; then
		out="$("$MPW_CLIENT" igbvf-ping "$dev" "$PKT_VF_IP" "$PKT_PF_IP" "$n" 2>&1)" || rc=$?
		neigh="$(ip neigh show "$PKT_VF_IP" dev "$pf")"
	else
		rc=1 out="ip link set dev $pf vf 0 mac $PKT_ADMIN_MAC failed"
	fi
	# The VF's own driver gets to choose its address again.
	ip link set dev "$pf" vf 0 mac 00:00:00:00:00:00
	mdev_off "$dev" "$vf"
	pkt_pf_restore "$pf" "$was_up"
	[ $rc = 0 ] || { echo "# mpw-vfio-client igbvf-ping: $out"; return 1; }
	expect_eq "VF_RESET answered with ACK" ack "$(kv mbx_reset "$out")" || return 1
	expect_eq "the MAC address in the PF's answer" "$PKT_ADMIN_MAC" "$(kv mbx_reset_mac "$out")" || return 1
	expect_eq "no SET_MAC_ADDR" skipped "$(kv mbx_set_mac "$out")" || return 1
	expect_eq "MAC address source" pf "$(kv mac_source "$out")" || return 1
	pkt_expect_exchange "$out" "$n" "$PKT_ADMIN_MAC" "$pf_mac" "$neigh" || return 1
	expect_eq "VF $vf back on igbvf" igbvf "$(pci_driver "$vf")" || return 1
	# With the administered address removed, igbvf chose an address of its own.
	expect_ne "igbvf's MAC address for $vf" "$PKT_ADMIN_MAC" "$(cat "/sys/bus/pci/devices/$vf/net/"*/address)"
}

# SPDX-License-Identifier: GPL-2.0
#
# libvirt (Debian's 11.3, unmodified) as the admin's tool. Its node-device API lists the
# wrapped VF's mdev types and makes mdevs (through mdevctl, as libvirt does). A TCG domain with
# `<hostdev type='mdev' model='vfio-pci'>` is refused on the stock type1 /dev/vfio/vfio with
# the library's message naming the opt-in; after `mpw-vfio-container enable` it starts (paused:
# nested TCG cannot boot a guest in useful time), its QEMU has the device (query-pci), and the
# device works for the domain's guest: the test client plays that guest through a qtest socket
# the domain's `<qemu:commandline>` gives QEMU (config cycles, BARs, Identify by DMA into the
# domain's RAM, the MSI-X message). Destroyed and started again (the next test), it works
# again, and a second mdev is hot-plugged into the running (paused) domain with attach-device
# and unplugged with detach-device, the client ejecting the slot as the guest's ACPI hot-plug
# handler. Each domain test starts QEMU once: under TCG a start takes about 45 s.
#
# libvirtd is started by the first test that needs it (lv_up) and stopped by the last test of
# the file. Its QEMU capabilities take minutes to probe under TCG: libvirt's own cache of
# them is kept between runs (tests/run.sh hands it in and out as $MPW_OUT/libvirt-caps;
# libvirt checks it against the binaries and the kernel, and probes again if it is stale).

# A domain test starts QEMU through libvirt (about a minute under TCG) and drives it: more
# than the default 300 s per test in a slow run (stop 14's CI stopped one at 300 s).
# mpw-test-limit: 450
#
# With MPW_KMEMLEAK_LATE=1, run after kmemleak's report, with kmemleak off (run-tests.sh):
# libvirt starts hundreds of programs, each about 2.5 times slower under kmemleak; its kernel
# paths (the group, the iommufd compatibility container, the opt-in) are 76's, which kmemleak
# judges.
# mpw-kmemleak: off
LV_DOM=mpw-lv
LV_CAPS=/var/cache/libvirt/qemu/capabilities

lv() {
	virsh -c qemu:///system "$@"
}

lv_answers() {
	lv version > /dev/null 2>&1
}

# lv_running: libvirtd is running and has its socket (no virsh: a virsh start costs seconds
# of the guest's time under TCG).
lv_running() {
	[ -S /run/libvirt/libvirt-sock ] && pgrep -x libvirtd > /dev/null
}

# lv_up: libvirtd running and answering (udevd, which its node-device driver follows, is
# already running in the test VM); says how long it took.
lv_up() {
	local t=$SECONDS n=0
	lv_running && return 0
	pgrep -x systemd-udevd > /dev/null || { echo "# systemd-udevd is not running"; return 1; }
	mkdir -p "$LV_CAPS"
	if [ -d "$MPW_OUT/libvirt-caps" ]; then
		cp "$MPW_OUT"/libvirt-caps/*.xml "$LV_CAPS"/ 2>/dev/null
		n=$(find "$LV_CAPS" -name '*.xml' | wc -l)
	fi
	# QEMU's stdout and stderr straight to /var/log/libvirt/qemu/<domain>.log, without
	# virtlogd (/etc is the guest's own overlay).
	grep -q '^stdio_handler' /etc/libvirt/qemu.conf ||
		echo 'stdio_handler = "file"' >> /etc/libvirt/qemu.conf
	# Its log says whether it used the cached capabilities or probed QEMU again (and why).
	LIBVIRT_LOG_FILTERS="1:qemu.qemu_capabilities 3:*" \
		LIBVIRT_LOG_OUTPUTS="1:file:$MPW_OUT/libvirtd.log" libvirtd --daemon
	wait_until 280 lv_answers || {
		echo "# libvirtd did not answer in 280 s:"
		lv_caps_log
		return 1
	}
	mkdir -p "$MPW_OUT/libvirt-caps"
	cp "$LV_CAPS"/*.xml "$MPW_OUT/libvirt-caps/" 2>/dev/null
	echo "# libvirtd up in $((SECONDS - t)) s ($n cached QEMU capabilities handed in;" \
		"seen running: $(lv_running && echo yes || echo "no: $(ls -d /run/libvirt/* 2>&1 | paste -sd' ')"))"
	lv_caps_log
}

# lv_caps_log: what libvirtd's log says of QEMU's capabilities (cached, outdated, probed).
lv_caps_log() {
	grep -E "Outdated|outdated|Saved caps|Loaded|invalid|probe|Returning caps" "$MPW_OUT/libvirtd.log" |
		head -12 | cut -c1-220 | sed 's/^/#   /'
}

lv_down() {
	pkill -x libvirtd 2>/dev/null
	wait_until 30 not_running libvirtd || echo "# libvirtd did not stop in 30 s"
}

not_running() { # NAME
	! pgrep -x "$1" > /dev/null
}

lv_lists_parent() { # NAME
	lv nodedev-list --cap mdev_types | grep -qx "$1"
}

# nodedev_name BDF: libvirt's name of a PCI function (pci_0000_02_00_1).
nodedev_name() {
	local b="${1//[:.]/_}"
	echo "pci_$b"
}

test_libvirt_nodedev_lists_types_and_makes_mdevs() {
	local vf="${NVME_VFS[0]}" u xml out name mdev
	lv_up || return 1
	bind_to mpw_sample "$vf" || { unbind_override "$vf"; echo "# binding $vf failed"; return 1; }
	name="$(nodedev_name "$vf")"
	u="$(uuidgen)"
	mdev="mdev_${u//-/_}_${name#pci_}"
	xml="/tmp/mpw-nodedev-$u.xml"
	printf '%s\n' "<device><parent>$name</parent><capability type='mdev'>" \
		"<type id='mpw_sample-vf'/><uuid>$u</uuid></capability></device>" > "$xml"
	# The node-device driver sees the new parent once udev has told it.
	wait_until 30 lv_lists_parent "$name"
	out="$(lv nodedev-list --cap mdev_types 2>&1)"
	expect_ok "nodedev-list --cap mdev_types lists $name" grep -qx "$name" <<< "$out" &&
		expect_ok "its XML has the type" \
			grep -q "<type id='mpw_sample-vf'>" <<< "$(lv nodedev-dumpxml "$name")" &&
		expect_ok "nodedev-define" lv nodedev-define "$xml" &&
		expect_ok "nodedev-start" lv nodedev-start "$mdev" &&
		expect_file "the mdev libvirt started" "/sys/bus/mdev/devices/$u" &&
		expect_eq "its type" mpw_sample-vf "$(basename "$(readlink "/sys/bus/mdev/devices/$u/mdev_type")")" &&
		expect_eq "available_instances" 0 \
			"$(< "/sys/class/mdev_bus/$vf/mdev_supported_types/mpw_sample-vf/available_instances")" &&
		expect_ok "mdevctl knows it (libvirt went through mdevctl)" \
			grep -q "$u" <<< "$(mdevctl list --defined)" &&
		expect_ok "nodedev-destroy" lv nodedev-destroy "$mdev" &&
		expect_no_file "the mdev after nodedev-destroy" "/sys/bus/mdev/devices/$u" &&
		expect_ok "nodedev-undefine" lv nodedev-undefine "$mdev" || {
		mdevctl stop -u "$u" 2>/dev/null; mdevctl undefine -u "$u" 2>/dev/null
		unbind_override "$vf"
		return 1
	}
	unbind_override "$vf"
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# lv_domain_xml UUID SOCKET: a TCG q35 domain with the admin's `<hostdev>` of the mdev UUID, at
# 04.0 of its bus 0 (where the qtest guest looks for it), a free PCIe root port (bus 1) for
# hot-plug, and QEMU's qtest socket. (No USB controller: libvirt would put q35's default one
# on that root port.)
lv_domain_xml() {
	cat <<-EOF
	<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
	  <name>$LV_DOM</name>
	  <memory unit='MiB'>128</memory>
	  <vcpu>1</vcpu>
	  <os><type arch='x86_64' machine='q35'>hvm</type></os>
	  <devices>
	    $(lv_hostdev_xml "$1" 0x00 0x04)
	    <controller type='pci' index='1' model='pcie-root-port'/>
	    <controller type='usb' model='none'/>
	    <memballoon model='none'/>
	  </devices>
	  <qemu:commandline>
	    <qemu:arg value='-qtest'/>
	    <qemu:arg value='unix:$2'/>
	  </qemu:commandline>
	</domain>
	EOF
}

# lv_hostdev_xml UUID BUS SLOT: the admin's `<hostdev>` of the mdev UUID, at BUS:SLOT.0.
lv_hostdev_xml() {
	printf '%s' "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>" \
		"<source><address uuid='$1'/></source>" \
		"<address type='pci' domain='0x0000' bus='$2' slot='$3' function='0x0'/></hostdev>"
}

# lv_start_and_drive VF PF_IDENTIFY SOCKET WHAT [eject]: `virsh start --paused` with the test
# client listening on the domain's qtest socket as its guest; checks what the guest saw. With
# eject, the guest then stays as the domain's ACPI hot-plug handler: its pid is left in
# LV_GUEST, its output in SOCKET.out.
lv_start_and_drive() {
	local vf="$1" pf_id="$2" sock="$3" what="$4" out rc=0 pid
	rm -f "$sock" "$sock.out"
	"$MPW_CLIENT" qtest-nvme-listen "$sock" 200 0x20 ${5:+eject 300} > "$sock.out" 2>&1 &
	pid=$!
	LV_GUEST=$pid
	wait_until 30 test -S "$sock" || { echo "# the client did not listen: $(< "$sock.out")"; kill $pid; return 1; }
	out="$(lv start --paused "$LV_DOM" 2>&1)" || {
		echo "# $what: virsh start --paused: $out"
		kill $pid 2>/dev/null; wait $pid
		return 1
	}
	if [ -n "${5:-}" ]; then
		# Until it has driven the device (or ended early: then its status).
		wait_until 200 lv_guest_driven "$sock.out" $pid
		kill -0 $pid 2>/dev/null || { wait $pid; rc=$?; [ $rc != 0 ] || rc=1; }
	else
		wait $pid || rc=$?
	fi
	out="$(< "$sock.out")"
	[ $rc = 0 ] || { echo "# $what: mpw-vfio-client qtest-nvme-listen (exit $rc):"; sed 's/^/#   /' <<< "$out"; return 1; }
	expect_eq "$what: the qtest peer is the domain's QEMU" \
		"$(cat "/run/libvirt/qemu/$LV_DOM.pid" 2>/dev/null)" "$(kv qemu_pid "$out")" || return 1
	expect_guest_drove "$vf" "$pf_id" "$out" || return 1
	lv_pci_count "$what: query-pci" "$vf" 1
}

# lv_guest_driven OUT PID: the guest (PID, its output OUT) has driven the device and now
# watches for eject requests, or has ended.
lv_guest_driven() {
	grep -q '^guest_eject_watch=1' "$1" || ! kill -0 "$2" 2>/dev/null
}

# lv_pci_count WHAT BDF N: the domain's QEMU has N PCI devices with BDF's vendor and device
# IDs and a memory BAR, on any of its buses (query-pci through virsh qemu-monitor-command).
lv_pci_count() {
	local out vid did
	vid=$(( $(< "/sys/bus/pci/devices/$2/vendor") ))
	did=$(( $(< "/sys/bus/pci/devices/$2/device") ))
	out="$(lv qemu-monitor-command "$LV_DOM" '{"execute":"query-pci"}' 2>&1)"
	expect_ok "$1: $3 device(s) $vid:$did with a memory BAR" \
		python3 -c 'import json,sys
d = json.loads(sys.argv[1])
vid, did = int(sys.argv[2]), int(sys.argv[3])
def walk(devs):
    for x in devs:
        yield x
        yield from walk(x.get("pci_bridge", {}).get("devices", []))
devs = list(walk([x for b in d["return"] for x in b["devices"]]))
hit = [x for x in devs if x["id"]["vendor"] == vid and x["id"]["device"] == did
       and any(r["type"] == "memory" for r in x["regions"])]
sys.exit(0 if len(hit) == int(sys.argv[4]) else 1)' "$out" "$vid" "$did" "$3" ||
		{ echo "# query-pci: ${out:0:400}"; return 1; }
}

lv_hostdevs() {
	lv dumpxml "$LV_DOM" | grep -c "<hostdev "
}

lv_hostdevs_are() {
	[ "$(lv_hostdevs)" = "$1" ]
}

# lv_hotplug VF SOCKET: with the domain running (paused) and its guest (LV_GUEST) watching for
# eject requests, VF's mdev is hot-plugged into the free root port (attach-device --live) and
# unplugged (detach-device --live): QEMU asks the guest to give the slot up, the guest ejects
# it, and libvirt hears QEMU's DEVICE_DELETED.
lv_hotplug() {
	local vf="$1" sock="$2" dev rc=0 out
	dev="$(mdev_on "$vf")" || { mdev_off "" "$vf"; echo "# wrapping $vf failed"; return 1; }
	# Into the free root port: bus 1.
	lv_hostdev_xml "$(basename "$dev")" 0x01 0x00 > "/tmp/$LV_DOM-hostdev.xml"
	expect_ok "virsh attach-device --live" lv attach-device "$LV_DOM" "/tmp/$LV_DOM-hostdev.xml" --live &&
		expect_eq "hostdevs in the live XML after attach-device" 2 "$(lv_hostdevs)" &&
		lv_pci_count "after attach-device" "$vf" 2 &&
		expect_ok "virsh detach-device --live" lv detach-device "$LV_DOM" "/tmp/$LV_DOM-hostdev.xml" --live &&
		expect_ok "the live XML loses it (libvirt saw DEVICE_DELETED)" \
			wait_until 60 lv_hostdevs_are 1 &&
		lv_pci_count "after detach-device" "$vf" 1 || rc=1
	wait_until 30 lv_guest_driven "$sock.out" "$LV_GUEST"
	out="$(< "$sock.out")"
	[ $rc != 0 ] || expect_eq "slots the guest ejected" 1 "$(kv ejects "$out")" || rc=1
	[ $rc != 0 ] || echo "# hot-plug: bridges $(kv guest_bridges "$out"); the guest ejected (bsel:slots) $(kv ejected "$out")"
	[ $rc = 0 ] || { echo "# the guest:"; sed 's/^/#   /' <<< "$(grep -v '^guest_\|^identify_\|^qemu_' <<< "$out")"; }
	# The domain lets the device go only with the slot (or when it is destroyed).
	[ $rc = 0 ] || lv destroy "$LV_DOM" > /dev/null 2>&1
	mdev_off "$dev" "$vf"
	[ $rc = 0 ] || return 1
	expect_eq "$vf back on nvme" nvme "$(pci_driver "$vf")"
}

# lv_wrap_and_define VF SOCKET: VF's mdev (its sysfs path printed) in the domain, defined.
lv_wrap_and_define() {
	local dev
	dev="$(mdev_on "$1")" || { mdev_off "" "$1"; echo "# wrapping $1 failed" >&2; return 1; }
	lv_domain_xml "$(basename "$dev")" "$2" > "/tmp/$LV_DOM.xml"
	lv define "/tmp/$LV_DOM.xml" > /dev/null || { mdev_off "$dev" "$1"; return 1; }
	echo "$dev"
}

# The stock type1 /dev/vfio/vfio: refused, and the kernel says what to do.
test_libvirt_refuses_a_domain_without_the_opt_in() {
	local vf="${NVME_VFS[0]}" dev out rc=0 mark holder sock=/tmp/mpw-lv-qtest.sock
	lv_up || return 1
	dev="$(lv_wrap_and_define "$vf" "$sock")" || return 1
	# (QEMU connects its qtest socket before it opens the device: something must listen.)
	rm -f "$sock"
	"$MPW_CLIENT" qtest-nvme-listen "$sock" 120 - > /dev/null 2>&1 &
	holder=$!
	wait_until 30 test -S "$sock"
	mark="mpw-test-lv-$RANDOM"; echo "$mark" > /dev/kmsg
	out="$(lv start --paused "$LV_DOM" 2>&1)" || rc=$?
	kill $holder 2>/dev/null; wait $holder 2>/dev/null
	lv destroy "$LV_DOM" > /dev/null 2>&1
	lv undefine "$LV_DOM" > /dev/null
	mdev_off "$dev" "$vf"
	expect_ne "virsh start on the type1 container: status" 0 "$rc" &&
		expect_ok "the kernel message names the opt-in" \
			grep -q "legacy VFIO container: .*mpw-vfio-container enable" <<< "$(dmesg_since "$mark")" ||
		{ echo "# virsh start: $out"; return 1; }
	echo "# virsh start without the opt-in: $(tail -1 <<< "$out")"
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# lv_opt_in_domain VF SOCKET: the opt-in enabled and VF's mdev defined in the domain (its
# sysfs path printed).
lv_opt_in_domain() {
	"$MPW_ROOT/tools/mpw-vfio-container" enable > /dev/null || { echo "# mpw-vfio-container enable failed" >&2; return 1; }
	lv_wrap_and_define "$1" "$2"
}

# lv_domain_gone VF DEV: the domain destroyed and undefined, its guest stopped, the opt-in
# undone and VF's mdev DEV removed.
lv_domain_gone() {
	lv destroy "$LV_DOM" > /dev/null 2>&1
	[ -z "${LV_GUEST:-}" ] || { kill "$LV_GUEST" 2>/dev/null; wait "$LV_GUEST" 2>/dev/null; }
	lv undefine "$LV_DOM" > /dev/null
	"$MPW_ROOT/tools/mpw-vfio-container" disable > /dev/null
	[ -z "$2" ] || mdev_off "$2" "$1"
}

# With the opt-in: started, driven by its guest (Identify by DMA into the domain's RAM, the
# MSI-X message), destroyed.
test_libvirt_starts_a_domain_with_an_mdev_hostdev() {
	local vf="${NVME_VFS[0]}" dev rc=0 sock=/tmp/mpw-lv-qtest.sock pf_id
	lv_up || return 1
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	dev="$(lv_opt_in_domain "$vf" "$sock")" || { lv_domain_gone "$vf" ""; return 1; }
	lv_start_and_drive "$vf" "$pf_id" "$sock" "started" || rc=1
	[ $rc = 0 ] || echo "# libvirt's QEMU log: $(tail -5 "/var/log/libvirt/qemu/$LV_DOM.log")"
	lv_domain_gone "$vf" "$dev"
	[ $rc = 0 ] || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# The domain defined and started again: its guest drives the device again and stays as the
# domain's ACPI hot-plug handler while a second mdev is hot-plugged and unplugged.
test_libvirt_hotplugs_an_mdev_hostdev() {
	local vf="${NVME_VFS[0]}" dev rc=0 sock=/tmp/mpw-lv-qtest.sock pf_id
	lv_up || return 1
	pf_id="$(nvme id-ctrl "$NVME_CTRL" 2>&1)"
	dev="$(lv_opt_in_domain "$vf" "$sock")" || { lv_domain_gone "$vf" ""; return 1; }
	lv_start_and_drive "$vf" "$pf_id" "$sock" "started" eject &&
		lv_hotplug "${NVME_VFS[1]}" "$sock" || rc=1
	[ $rc = 0 ] || echo "# libvirt's QEMU log: $(tail -5 "/var/log/libvirt/qemu/$LV_DOM.log")"
	lv_domain_gone "$vf" "$dev"
	# (The last test of the file.)
	lv_down
	[ $rc = 0 ] || return 1
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

# SPDX-License-Identifier: GPL-2.0
#
# mdevctl (1.2) as the admin's tool: it finds the wrapped VF's type, starts an mdev on it,
# persists it as a definition, and starts and stops it again from that definition.
#
# With MPW_KMEMLEAK_LATE=1, run after kmemleak's report, with kmemleak off (run-tests.sh):
# mdevctl's kernel paths (create, remove through sysfs) are 40's, which kmemleak judges.
# mpw-kmemleak: off

# mdevctl_done UUID VF: whatever the test left, stop and forget UUID and unwrap VF.
mdevctl_done() {
	mdevctl stop -u "$1" 2>/dev/null
	mdevctl undefine -u "$1" 2>/dev/null
	unbind_override "$2"
}

test_mdevctl_manages_mdevs_on_a_wrapped_vf() {
	local vf="${NVME_VFS[0]}" u out
	u="$(uuidgen)"
	bind_to mpw_sample "$vf" || { mdevctl_done "$u" "$vf"; echo "# binding $vf failed"; return 1; }
	out="$(mdevctl types -p "$vf" 2>&1)"
	expect_ok "mdevctl types lists mpw_sample-vf on $vf" grep -q '^  mpw_sample-vf$' <<< "$out" &&
		expect_ok "with one available instance" grep -q 'Available instances: 1$' <<< "$out" &&
		expect_ok "and device API vfio-pci" grep -q 'Device API: vfio-pci$' <<< "$out" &&
		expect_ok "mdevctl start" mdevctl start -u "$u" -p "$vf" -t mpw_sample-vf &&
		expect_file "the mdev mdevctl started" "/sys/bus/mdev/devices/$u" &&
		expect_eq "mdevctl list" "$u $vf mpw_sample-vf manual" "$(mdevctl list | sed '/^$/d')" &&
		expect_ok "no instance left (mdevctl types)" \
			grep -q 'Available instances: 0$' <<< "$(mdevctl types -p "$vf")" &&
		expect_ok "mdevctl define (from the running mdev)" mdevctl define -u "$u" &&
		expect_eq "mdevctl list --defined" "$u $vf mpw_sample-vf manual (active)" \
			"$(mdevctl list -d | sed '/^$/d')" &&
		expect_ok "mdevctl stop" mdevctl stop -u "$u" &&
		expect_no_file "the mdev after mdevctl stop" "/sys/bus/mdev/devices/$u" &&
		expect_ok "mdevctl start from the definition" mdevctl start -u "$u" &&
		expect_file "the mdev started from its definition" "/sys/bus/mdev/devices/$u" &&
		expect_ok "mdevctl stop" mdevctl stop -u "$u" &&
		expect_ok "mdevctl undefine" mdevctl undefine -u "$u" &&
		expect_eq "definitions after undefine" "" "$(mdevctl list -d | sed '/^$/d')" || {
		mdevctl_done "$u" "$vf"
		return 1
	}
	mdevctl_done "$u" "$vf"
	expect_eq "VF back on nvme" nvme "$(pci_driver "$vf")"
}

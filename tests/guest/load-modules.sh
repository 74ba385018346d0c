#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM: installs the project's modules as an admin would (`make install`
# against the running kernel's build tree: extra/ of its module directory, then depmod) and
# loads them with modprobe, which pulls in the mdev core and the library: every vendor module
# that was built. The install is skipped when the modules are installed already.
#   --install      install only (run-tests.sh runs it in the background during setup_hw:
#                  under TCG, make and depmod take over a minute)
#   --kunit        also load the KUnit module, whose suites run at load time and print KTAP
#                  to the kernel log
#   --kunit-only   the library and the KUnit module only, no vendor module (`make kunit`)
#   --unload       unload the KUnit module if it is loaded, every vendor module that was
#                  built, then the library; fails if one is not loaded or does not let go.
#                  (`make uninstall` is checked on the host, tests/host/install.sh: under TCG
#                  its make and depmod take 15 s or more.)
# Checks on the way (each failure says what it saw): the modules modprobe loads are the
# installed ones, and the mdev core and the library come before the vendor module.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${1:-}"
krel="$(uname -r)"
moddir="/lib/modules/$krel"

loaded() { # NAME
	grep -q "^$1 " /proc/modules
}

fail() {
	echo "load-modules: $*" >&2
	exit 1
}

# The modules this tree built (modules.order), the library's and the KUnit module's aside.
vendors() {
	sed -n 's/\.o$//p' "$root/modules.order" | grep -vx 'mdev_pci_wrap\|mdev_pci_wrap_kunit' || true
}

if [ "$mode" = --unload ]; then
	! loaded mdev_pci_wrap_kunit || rmmod mdev_pci_wrap_kunit
	for name in $(vendors); do
		rmmod "$name"
	done
	rmmod mdev_pci_wrap
	exit 0
fi

# installed: every module this tree built resolves to extra/ of the module directory.
installed() {
	local name path
	for name in mdev_pci_wrap $(vendors); do
		path="$(modinfo -n "$name" 2>&1)" || { echo "modinfo $name: $path"; return 1; }
		[ "$path" = "$moddir/extra/$name.ko" ] || { echo "$name resolves to $path, not extra/"; return 1; }
	done
}

# install: make install into the running kernel's module directory. virtme-ng links that
# directory to the kernel tree (read-only here): it becomes a directory of this guest's own
# (/lib is a writable overlay in the guest), linking to the same files, so that make install
# and depmod can write into it.
install() {
	local src t0=$SECONDS why
	if [ -L "$moddir" ]; then
		src="$(readlink -f "$moddir")"
		rm "$moddir"
		mkdir "$moddir"
		cp -as "$src/." "$moddir/"
	fi
	make -s -C "$root" KDIR="$moddir/build" install
	why="$(installed)" || fail "after make install: $why"
	echo "load-modules: make install took $((SECONDS - t0)) s"
}

[ -s "$root/modules.order" ] || fail "nothing built ($root/modules.order): run make first"
if ! installed > /dev/null; then
	install
elif [ "$mode" = --install ]; then
	exit 0
fi
# modprobe loads the mdev core and the library (in the order depmod found: the library's own
# code does not call the mdev core, its generic code instantiated in the vendor module does),
# then the module.
deps="$(modprobe --show-depends mpw_sample)"
order="$(sed -n 's|.*/\([a-z_]*\)\.ko.*|\1|p' <<< "$deps" | paste -sd' ')"
case "$order" in
"mdev mdev_pci_wrap mpw_sample" | "mdev_pci_wrap mdev mpw_sample") ;;
*) fail "modprobe mpw_sample would load '$order', not mdev and mdev_pci_wrap, then mpw_sample" ;;
esac
echo "load-modules: installed in $moddir/extra; modprobe mpw_sample loads: $order"
[ "$mode" != --install ] || exit 0

if [ "$mode" != --kunit-only ]; then
	for name in $(vendors); do
		modprobe "$name"
	done
fi
if [ "$mode" = --kunit ] || [ "$mode" = --kunit-only ]; then
	modprobe mdev_pci_wrap_kunit
fi
loaded mdev_pci_wrap || modprobe mdev_pci_wrap
echo "load-modules: loaded: $(grep -o '^\(mdev\|mdev_pci_wrap\|mdev_pci_wrap_kunit\|mpw_[a-z_]*\) ' /proc/modules | paste -sd' ')"

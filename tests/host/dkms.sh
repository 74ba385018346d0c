#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms.conf, as a distribution uses it: `dkms add`, `build`, `install` for the test kernel
# (its build tree from the cache), then `uninstall` and `remove`, on a copy of the tracked
# tree. It runs in a private mount namespace where DKMS's fixed trees (/var/lib/dkms,
# /usr/src, /lib/modules) are empty scratch directories: the host's are never touched (a
# host without one of them gets the empty directory to mount on).
# Checks: only the library and the vendor modules are built and installed (MPW_TESTS=n),
# for the test kernel's release, where depmod makes `modprobe mpw_sample` load the library
# first; uninstall takes them away again. Its last line is the summary.

set -euo pipefail

if [ "${1:-}" != --inside ]; then
	mkdir -p /var/lib/dkms /usr/src /lib/modules
	exec unshare --mount --propagation private bash "$0" --inside
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kdir="$(bash "$root/scripts/env.sh" --print-kdir)"
krel="$(cat "$kdir/include/config/kernel.release")"
name=mdev_pci_wrap
ver="$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$root/dkms.conf")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/dkms" "$scratch/src/$name-$ver" "$scratch/modules/$krel"
mount --bind "$scratch/dkms" /var/lib/dkms
mount --bind "$scratch/src" /usr/src
mount --bind "$scratch/modules" /lib/modules
(cd "$root" && git ls-files -z | xargs -0 cp --parents -t "/usr/src/$name-$ver")

fail() {
	echo "FAIL: $*"
	exit 1
}

# Every vendor module (vendors/<name>/<name>.rs) is one DKMS builds.
for v in "$root"/vendors/*/; do
	v="$(basename "$v")"
	[ -f "$root/vendors/$v/$v.rs" ] || continue
	grep -q "^BUILT_MODULE_NAME\[[0-9]*\]=\"$v\"" "$root/dkms.conf" ||
		fail "dkms.conf does not build the vendor module $v"
done

echo "dkms add/build/install $name/$ver for $krel (kernel tree $kdir)"
dkms add -m "$name" -v "$ver"
if ! dkms build -m "$name" -v "$ver" -k "$krel" --kernelsourcedir "$kdir"; then
	tail -40 "/var/lib/dkms/$name/$ver/build/make.log"
	fail "dkms build"
fi
log="$(find "/var/lib/dkms/$name/$ver" -name make.log | head -1)"
grep -q 'LD \[M\] *mpw_sample.ko' "$log" 2>/dev/null || fail "no build log with mpw_sample.ko in it"
! grep -E 'mdev_pci_wrap_kunit|mpw_test_vendor' "$log" || fail "DKMS's build built the test modules"
dkms install -m "$name" -v "$ver" -k "$krel" --kernelsourcedir "$kdir"

installed="$(cd "/lib/modules/$krel" && find . -name '*.ko*' | sort | tr '\n' ' ')"
echo "installed: $installed"
for m in mdev_pci_wrap mpw_sample; do
	[[ $installed == *"/$m.ko"* ]] || fail "$m was not installed"
done
for m in mdev_pci_wrap_kunit mpw_test_vendor; do
	[[ $installed != *"/$m.ko"* ]] || fail "test module $m was installed"
done
ko="$(find "/lib/modules/$krel" -name mpw_sample.ko | head -1)"
vermagic="$(modinfo -F vermagic "$ko")"
[[ $vermagic == "$krel "* ]] || fail "mpw_sample's vermagic '$vermagic' is not $krel's"
dep="$(modprobe -d / -S "$krel" --show-depends mpw_sample 2>&1)" ||
	fail "modprobe --show-depends mpw_sample: $dep"
echo "modprobe mpw_sample would run:"
while read -r l; do echo "  $l"; done <<< "$dep"
# The library before the vendor module (the kernel's own vfio/mdev modules are not in this
# scratch tree, so the chain stops at the library here).
grep -n "mdev_pci_wrap.ko" <<< "$dep" | head -1 | grep -q '^1:' ||
	fail "the library is not loaded first"
[ "$(grep -c 'insmod' <<< "$dep")" = 2 ] || fail "expected two insmods"

dkms uninstall -m "$name" -v "$ver" -k "$krel"
dkms remove -m "$name" -v "$ver" --all
left="$(find "/lib/modules/$krel" -name '*.ko*' | tr '\n' ' ')"
[ -z "$left" ] || fail "left after dkms uninstall: $left"
[ ! -e "/var/lib/dkms/$name" ] || fail "dkms remove left /var/lib/dkms/$name"
echo "dkms: built, installed 2 modules for $krel (library first), uninstalled, removed"

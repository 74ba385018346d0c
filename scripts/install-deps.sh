#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything mdev_pci_wrap needs to build and test, from package registries only.
# Idempotent: each step checks whether its result is already there and is skipped if so.
# Runs as root (apt-get). Everything that is not a Debian package goes into the cache
# directory ($MPW_CACHE, default ~/.cache/mdev_pci_wrap), never into the repository.
#
# Prints the environment file path on success; scripts/env.sh sources it.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
. "$here/versions.sh"

say() { printf '[deps] %s\n' "$*" >&2; }

mkdir -p "$MPW_CACHE"

# --- Debian packages (bookworm, bookworm-security, bookworm-backports) -----------------
# What an admin's host needs too, to build a kernel and the modules and to use them (the
# user guide's "Packages" lists exactly these: tests/host/guide.sh), then what only the
# project's own checks and test VM need.
host_pkgs=(
	rustc-web rust-web-src clang-19 lld-19 llvm-19 libclang-19-dev
	flex bison bc libelf-dev libssl-dev cpio kmod make gcc xz-utils
	mdevctl pciutils uuid-runtime dkms
)
test_pkgs=(
	rust-web-clippy rustfmt-web nvme-cli python3-venv
	libseccomp-dev libcap-ng-dev
	linux-perf
)
apt_pkgs=("${host_pkgs[@]}" "${test_pkgs[@]}")
backports_list=/etc/apt/sources.list.d/mdev-pci-wrap-bookworm-backports.sources

need_apt=()
for p in "${apt_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null &&
   qemu-system-x86_64 --version | grep -q "version ${QEMU_VERSION_PREFIX}"; then
	qemu_ok=1
fi
# libvirt, the newest these registries give (bookworm-backports): the daemon with its QEMU and
# node-device drivers, and virsh. (Not in versions.sh: that file keys the kernel cache.)
libvirt_prefix=11.
libvirt_pkgs=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-driver-nodedev libvirt-clients)
libvirt_ok=0
if virsh --version 2>/dev/null | grep -q "^${libvirt_prefix}" &&
   dpkg-query -W -f='${Status}' libvirt-daemon-driver-nodedev 2>/dev/null | grep -q 'install ok installed'; then
	libvirt_ok=1
fi

if [ ${#need_apt[@]} -gt 0 ] || [ $qemu_ok = 0 ] || [ $libvirt_ok = 0 ]; then
	if ! apt-cache policy qemu-system-x86 2>/dev/null | grep -q bookworm-backports; then
		say "adding bookworm-backports to apt sources ($backports_list)"
		cat > "$backports_list" <<-EOS
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: bookworm-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOS
	fi
	say "apt-get update"
	apt-get update -qq
	if [ ${#need_apt[@]} -gt 0 ]; then
		say "installing: ${need_apt[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
	fi
	if [ $qemu_ok = 0 ]; then
		say "installing QEMU ${QEMU_VERSION_PREFIX} from bookworm-backports"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-t bookworm-backports qemu-system-x86 >/dev/null
	fi
	if [ $libvirt_ok = 0 ]; then
		# libvirt's QEMU driver wants systemd-container: bookworm's, which matches the
		# machine's systemd. (Backports' would upgrade systemd and udev to 254, whose
		# coldplug in the test VM takes 76 s instead of 27.)
		say "installing libvirt ${libvirt_prefix}x from bookworm-backports: ${libvirt_pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-t bookworm-backports "${libvirt_pkgs[@]}" systemd-container/bookworm >/dev/null
	fi
fi
virsh --version | grep -q "^${libvirt_prefix}" ||
	{ say "libvirt is not ${libvirt_prefix}x: $(virsh --version)"; exit 1; }
qemu-system-x86_64 --version | grep -q "version ${QEMU_VERSION_PREFIX}" ||
	{ say "QEMU is not ${QEMU_VERSION_PREFIX}: $(qemu-system-x86_64 --version | head -1)"; exit 1; }
/usr/bin/rustc --version | grep -q "^rustc ${RUSTC_VERSION}" ||
	{ say "/usr/bin/rustc is not ${RUSTC_VERSION}"; exit 1; }

# --- bindgen-cli from crates.io (pinned) --------------------------------------------------
if ! "$MPW_TOOLS/bin/bindgen" --version 2>/dev/null | grep -q " ${BINDGEN_VERSION}\$"; then
	say "cargo install bindgen-cli ${BINDGEN_VERSION} (a few minutes)"
	cargo install --locked --quiet --root "$MPW_TOOLS" "bindgen-cli@${BINDGEN_VERSION}"
fi

# --- virtiofsd from crates.io (pinned) ----------------------------------------------------
# The test VM's root file system (the host's, read-only) goes over virtio-fs when virtme-ng
# finds virtiofsd (scripts/vm.sh, docs/test-vm.md): Debian 12 does not package it. (Pinned
# here, not in versions.sh: that file keys the kernel cache.)
virtiofsd_version=1.14.0
if ! "$MPW_TOOLS/bin/virtiofsd" --version 2>/dev/null | grep -q " ${virtiofsd_version}\$"; then
	say "cargo install virtiofsd ${virtiofsd_version} (a few minutes)"
	cargo install --locked --quiet --root "$MPW_TOOLS" "virtiofsd@${virtiofsd_version}"
fi

# --- virtme-ng from PyPI (pinned), in its own venv ----------------------------------------
if ! "$MPW_VENV/bin/vng" --version 2>/dev/null | grep -q "${VIRTME_NG_VERSION}"; then
	say "pip install virtme-ng==${VIRTME_NG_VERSION}"
	rm -rf "$MPW_VENV"
	python3 -m venv "$MPW_VENV"
	"$MPW_VENV/bin/pip" install -q --disable-pip-version-check "virtme-ng==${VIRTME_NG_VERSION}"
fi

# --- From trixie-backports: the kernel source, and Debian's own kernel config -------------
# Fetched with a private sources list and private apt state, so the machine's apt
# configuration does not learn about trixie.
# trixie_download PACKAGE=VERSION SHA256 DEST: the .deb at DEST, checked.
trixie_download() {
	local pkg="$1" sum="$2" deb="$3" a="$MPW_CACHE/apt" aopt
	[ -f "$deb" ] && echo "$sum  $deb" | sha256sum -c --status && return 0
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$MPW_CACHE/dl"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
		> "$a/sources.list"
	aopt=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
	      -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
	      -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
	[ -n "${trixie_updated:-}" ] || { apt-get "${aopt[@]}" update -qq; trixie_updated=1; }
	rm -rf "$MPW_CACHE/dl/tmp"
	mkdir -p "$MPW_CACHE/dl/tmp"
	(cd "$MPW_CACHE/dl/tmp" && apt-get "${aopt[@]}" download -qq "$pkg" 2>&1 |
		grep -v "Download is performed unsandboxed" >&2 || true)
	mv -f "$MPW_CACHE/dl/tmp/"*.deb "$deb" 2>/dev/null || true
	rm -rf "$MPW_CACHE/dl/tmp"
	echo "$sum  $deb" | sha256sum -c --status || { say "SHA256 mismatch for $deb"; exit 1; }
}

if [ ! -f "$MPW_KSRC/.mpw-unpacked-${KERNEL_DEB_VERSION}" ]; then
	deb="$MPW_CACHE/dl/linux-source-${KERNEL_SERIES}_${KERNEL_DEB_VERSION}_all.deb"
	if [ ! -f "$deb" ] || ! echo "${KERNEL_DEB_SHA256}  $deb" | sha256sum -c --status; then
		say "downloading linux-source-${KERNEL_SERIES} ${KERNEL_DEB_VERSION} (167 MB)"
		trixie_download "linux-source-${KERNEL_SERIES}=${KERNEL_DEB_VERSION}" "$KERNEL_DEB_SHA256" "$deb"
	fi
	say "unpacking kernel source into $MPW_KSRC"
	rm -rf "$MPW_KSRC" "$MPW_CACHE/src.tmp"
	mkdir -p "$MPW_CACHE/src.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$MPW_CACHE/src.tmp" \
		"./usr/src/linux-source-${KERNEL_SERIES}.tar.xz"
	mkdir -p "$MPW_KSRC"
	tar -xJf "$MPW_CACHE/src.tmp/usr/src/linux-source-${KERNEL_SERIES}.tar.xz" \
		-C "$MPW_KSRC" --strip-components=1
	rm -rf "$MPW_CACHE/src.tmp"
	grep -q "^SUBLEVEL = ${KERNEL_VERSION##*.}\$" "$MPW_KSRC/Makefile" ||
		{ say "unexpected kernel version in $MPW_KSRC"; exit 1; }
	touch "$MPW_KSRC/.mpw-unpacked-${KERNEL_DEB_VERSION}"
fi

# Debian's own build of that kernel, for its .config: tests/host/host-kernel.sh configures a
# host kernel the way docs/user-guide.md tells an admin to (Debian's config +
# kernel/host.config). 1.8 MB. (Pinned here, not in versions.sh: that file keys the kernel
# cache.)
debian_headers="linux-headers-${KERNEL_VERSION}+deb13-amd64"
debian_headers_sha256=1c43249a7b98aee4af60f2b822ddb04a9e96c1c9e8b013e5f74d3d9faf318699
debian_headers_deb="$MPW_CACHE/dl/${debian_headers}_${KERNEL_DEB_VERSION}_amd64.deb"
if [ ! -f "$debian_headers_deb" ]; then
	say "downloading ${debian_headers} ${KERNEL_DEB_VERSION} (Debian's kernel config, 1.8 MB)"
	trixie_download "${debian_headers}=${KERNEL_DEB_VERSION}" "$debian_headers_sha256" "$debian_headers_deb"
fi
say "dependencies OK"

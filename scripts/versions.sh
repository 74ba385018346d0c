# SPDX-License-Identifier: GPL-2.0
# Pinned versions and cache locations, sourced by every script. Changing a pin here
# changes the cache keys, so the affected artefact is rebuilt.

RUSTC_VERSION=1.96
QEMU_VERSION_PREFIX=10.0.
BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42
KERNEL_SERIES=7.3
KERNEL_VERSION=7.3.4
KERNEL_DEB_VERSION=7.3.4-1~bpo13+1
# Bump when scripts/build-kernel.sh changes how the kernel is configured or built.
KERNEL_RECIPE=1
KERNEL_DEB_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3

MPW_CACHE="${MPW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mdev_pci_wrap}"
MPW_TOOLS="$MPW_CACHE/tools"
MPW_VENV="$MPW_CACHE/venv"
MPW_KSRC="$MPW_CACHE/linux-${KERNEL_VERSION}"
export MPW_CACHE

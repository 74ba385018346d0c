/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers whose items lib/mdev_pci_wrap/bindings.rs needs and the kernel's `bindings` crate
 * lacks. Only items declared in these headers are generated (see the allow-list in Kbuild);
 * types from other headers resolve to `kernel::bindings`.
 */

#include <linux/anon_inodes.h>
#include <linux/crc32.h>
#include <linux/iommufd.h>
#include <linux/iova_bitmap.h>
#include <linux/mdev.h>
#include <linux/vfio.h>
#include <uapi/linux/iommufd.h>
#include <uapi/linux/vfio.h>

#include "helpers.h"

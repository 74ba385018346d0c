// SPDX-License-Identifier: GPL-2.0
/*
 * Exports the Rust symbols of the mdev_pci_wrap crate that dependent modules (vendors/,
 * kunit/) reference; Kbuild generates the list from their undefined symbols. This is the
 * nova-core mechanism (drivers/gpu/nova-core/nova_core_exports.c), a workaround until Kbuild
 * supports Rust cross-module dependencies natively.
 */

#include <linux/export.h>

#define EXPORT_SYMBOL_RUST_GPL(sym) extern int sym; EXPORT_SYMBOL_GPL(sym)

#include "exports_generated.h"

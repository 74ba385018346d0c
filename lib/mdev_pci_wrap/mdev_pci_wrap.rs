// SPDX-License-Identifier: GPL-2.0

//! mdev_pci_wrap: PCI SR-IOV virtual functions as mediated devices.
//!
//! This crate is the reusable library that vendor parent drivers (`vendors/`) link against.
//! It is built as its own module, `mdev_pci_wrap.ko`, which the vendor modules depend on.
//!
//! Layers, bottom to top:
//! - [`bindings`]: raw bindings for the vfio/mdev/iommufd headers (generated at build time)
//!   and C helpers for their static inline functions and macros;
//! - safe abstractions over the C vfio/mdev APIs;
//! - the generic VF-as-mdev logic a vendor driver configures with a few hooks.
//!
//! See `docs/architecture.md`.

pub mod bindings;
pub mod layout;
pub mod uapi;

use kernel::prelude::*;

module! {
    type: MdevPciWrap,
    name: "mdev_pci_wrap",
    authors: ["mdev_pci_wrap developers"],
    description: "Library: PCI SR-IOV virtual functions as mediated devices",
    license: "GPL",
}

/// The library module: it holds no state of its own; vendor modules register their drivers.
struct MdevPciWrap;

impl kernel::Module for MdevPciWrap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("library loaded\n");
        Ok(MdevPciWrap)
    }
}

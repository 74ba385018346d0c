// SPDX-License-Identifier: GPL-2.0

//! mpw_kernel: the safe Rust abstractions under mdev_pci_wrap.
//!
//! Everything `unsafe` of the project lives in this crate, shaped as it would be upstreamed
//! into `rust/kernel/`: bindings for the vfio, mdev and iommufd headers (generated at build
//! time) and C helpers for their static inline functions; mediated devices and their parents
//! ([`mdev`]); VFIO devices embedding Rust data with `#[vtable]` operations, fault-based
//! mappings and region/irq uAPI marshalling ([`vfio`]); a physical device bound to a user's
//! iommufd context ([`iommufd`]); eventfds ([`eventfd`]); MSI/MSI-X vectors forwarded to
//! eventfds ([`irq`]); eventfds whose signals the kernel acts on ([`virqfd`]); a PCI driver
//! that owns its devices' DMA, with AER error handlers ([`pci_driver`]), and the bound-function
//! references it hands out ([`bound_function`]); and the PCI
//! operations a VFIO device needs on the function it passes through, as guards and
//! bounds-checked types ([`pci_io`]); and CRC-32 over byte slices ([`crc`]).
//!
//! The library logic (`lib/mdev_pci_wrap`, a crate with `#![forbid(unsafe_code)]`) and the
//! vendor drivers build on these. Both crates are linked into one module,
//! `mdev_pci_wrap.ko`, whose `module!` is here.

pub mod bindings;
pub mod bound_function;
pub mod crc;
pub mod eventfd;
pub mod iommufd;
pub mod irq;
pub mod layout;
pub mod mdev;
pub mod pci_driver;
pub mod pci_io;
pub mod uapi;
pub mod vfio;
pub mod virqfd;

use kernel::prelude::*;

/// Whether a message userspace can trigger may be printed now: all such messages share one
/// limit (ten per five seconds), so a loop of bad requests cannot flood the log.
pub fn user_msg_allowed() -> bool {
    // SAFETY: The helper only updates its own rate-limit state, under its own lock.
    unsafe { bindings::mpw_helper_user_ratelimit() }
}

module! {
    type: MdevPciWrap,
    name: "mdev_pci_wrap",
    authors: ["mdev_pci_wrap developers"],
    description: "Library: PCI SR-IOV virtual functions as mediated devices",
    license: "GPL",
    imports_ns: ["IOMMUFD"],
}

/// The library module: it holds no state of its own; vendor modules register their drivers.
pub struct MdevPciWrap;

impl kernel::Module for MdevPciWrap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("library loaded\n");
        Ok(MdevPciWrap)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What a vendor driver describes in device terms, beside its [`VfDriver`](crate::vf::VfDriver)
//! hooks: the BAR ranges it traps, its edits of the config space, the interrupts it raises.
//!
//! See `docs/vendor-guide.md`.

use crate::config::{
    Bar,
    BarKind,
    CapKind,
    VirtConfig, //
};
use kernel::prelude::*;

/// A range of a BAR the vendor traps: userspace never maps it (the pages holding it are left
/// out of the BAR's mmap and of its sparse-mmap areas), and its reads and writes go to the
/// vendor's [`trap_read`](crate::vf::VfDriver::trap_read) /
/// [`trap_write`](crate::vf::VfDriver::trap_write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    /// The BAR (0 to 5).
    pub bar: u8,
    /// The offset of the range in the BAR.
    pub offset: u64,
    /// Its length in bytes.
    pub size: u64,
}

impl Trap {
    /// `size` bytes at `offset` of BAR `bar`.
    pub const fn new(bar: u8, offset: u64, size: u64) -> Self {
        Self { bar, offset, size }
    }

    /// Whether an access of `width` bytes at `off` of BAR `bar` touches the range.
    pub fn hits(&self, bar: usize, off: u64, width: u16) -> bool {
        usize::from(self.bar) == bar
            && off < self.offset.saturating_add(self.size)
            && off.saturating_add(u64::from(width)) > self.offset
    }
}

/// A device-specific VFIO region the vendor offers after the PCI ones (index
/// `VFIO_PCI_NUM_REGIONS + i` for the `i`th of [`VfDriver::REGIONS`](crate::vf::VfDriver::REGIONS)),
/// named by its type and subtype (`VFIO_REGION_INFO_CAP_TYPE`): userspace reads (and, if
/// `writable`, writes) it, never maps it; the accesses go to the vendor's
/// [`region_read`](crate::vf::VfDriver::region_read) /
/// [`region_write`](crate::vf::VfDriver::region_write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorRegion {
    /// `VFIO_REGION_TYPE_*`; for a vendor's own, `VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor
    /// ID` ([`VendorRegion::pci_vendor`]).
    pub kind: u32,
    /// The subtype within `kind`.
    pub subtype: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Userspace may write it.
    pub writable: bool,
}

impl VendorRegion {
    /// A region of PCI vendor `vendor`'s own type (`VFIO_REGION_TYPE_PCI_VENDOR_TYPE |
    /// vendor`), subtype `subtype`, of `size` bytes.
    pub const fn pci_vendor(vendor: u16, subtype: u32, size: u64, writable: bool) -> Self {
        Self {
            kind: crate::bindings::VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor as u32,
            subtype,
            size,
            writable,
        }
    }
}

/// A BAR the function does not have, emulated by the vendor: userspace sees a BAR of this
/// kind and size (sized through config space, a region it can read and write, never map),
/// and every access goes to the vendor's [`trap_read`](crate::vf::VfDriver::trap_read) /
/// [`trap_write`](crate::vf::VfDriver::trap_write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualBar {
    /// The BAR (0 to 5); the function must not have it.
    pub bar: u8,
    /// I/O or 32-bit memory.
    pub io: bool,
    /// Its size in bytes: a power of two, at least 4 (I/O) or 16 (memory).
    pub size: u64,
}

impl VirtualBar {
    /// An I/O BAR of `size` bytes at index `bar`.
    pub const fn io(bar: u8, size: u64) -> Self {
        Self {
            bar,
            io: true,
            size,
        }
    }

    /// A 32-bit memory BAR of `size` bytes at index `bar`.
    pub const fn mem32(bar: u8, size: u64) -> Self {
        Self {
            bar,
            io: false,
            size,
        }
    }

    /// Lays the virtual BARs over the function's `bars`: `EINVAL` for one the function has
    /// (or the upper half of its 64-bit BAR), a bad index or size.
    pub fn apply(virtual_bars: &[VirtualBar], bars: &mut [Bar; 6]) -> Result<[bool; 6]> {
        let mut is_virtual = [false; 6];
        for v in virtual_bars {
            let i = usize::from(v.bar);
            let min = if v.io { 4 } else { 16 };
            if i >= bars.len() {
                return Err(EINVAL);
            }
            let upper_half = i > 0 && matches!(bars[i - 1].kind, BarKind::Mem64 { .. });
            if bars[i].size != 0
                || upper_half
                || is_virtual[i]
                || !v.size.is_power_of_two()
                || v.size < min
                || v.size > 1 << 31
            {
                return Err(EINVAL);
            }
            bars[i] = Bar {
                kind: if v.io {
                    BarKind::Io
                } else {
                    BarKind::Mem32 { prefetch: false }
                },
                size: v.size,
            };
            is_virtual[i] = true;
        }
        Ok(is_virtual)
    }
}

/// An interrupt a vendor raises to the user itself: the user's eventfd of that vector is
/// signalled, as if the function had sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    /// MSI vector `n`.
    Msi(u32),
    /// MSI-X vector `n`.
    MsiX(u32),
}

/// The config space of a VF as the vendor edits it when an mdev is created
/// ([`VfDriver::edit_config`](crate::vf::VfDriver::edit_config)): the hardware's, laid over
/// with vfio-pci's permission tables (`docs/config-space.md`). Edits are kept for every open.
pub struct ConfigEdit<'a>(pub(crate) &'a mut VirtConfig);

impl ConfigEdit<'_> {
    /// Presents vendor and device ID `vendor:device`.
    pub fn set_ids(&mut self, vendor: u16, device: u16) -> Result {
        self.0
            .set_virtual(0x00, 4, u32::from(vendor) | (u32::from(device) << 16), 0)
    }

    /// Presents subsystem vendor and subsystem ID `vendor:device`.
    pub fn set_subsystem_ids(&mut self, vendor: u16, device: u16) -> Result {
        self.0
            .set_virtual(0x2c, 4, u32::from(vendor) | (u32::from(device) << 16), 0)
    }

    /// Presents revision `revision`.
    pub fn set_revision(&mut self, revision: u8) -> Result {
        self.0.set_virtual(0x08, 1, revision.into(), 0)
    }

    /// Presents class code `class` (base class, subclass, programming interface: 24 bits).
    pub fn set_class(&mut self, class: u32) -> Result {
        if class > 0xff_ffff {
            return Err(EINVAL);
        }
        self.0.set_virtual(0x09, 1, class & 0xff, 0)?;
        self.0.set_virtual(0x0a, 2, class >> 8, 0)
    }

    /// Makes the `len` bytes (1, 2 or 4, aligned) at `off` virtual: they read `value`, and
    /// userspace may change the bits of `writable` in the virtual copy (never the hardware).
    /// BAR registers cannot be changed (`EINVAL`).
    pub fn set_virtual(&mut self, off: u16, len: u16, value: u32, writable: u32) -> Result {
        self.0.set_virtual(off, len, value, writable)
    }

    /// Cuts capability `kind` out of its chain; its bytes become read-only. MSI and MSI-X
    /// cannot be hidden.
    pub fn hide(&mut self, kind: CapKind) -> Result {
        self.0.hide(kind)
    }

    /// Adds a wholly virtual capability `kind` with the bytes `data` (the ID and `next` are
    /// filled in), of which userspace may write the bits of `writable` (per byte). Returns
    /// its offset. A capability is replaced by hiding it and adding its replacement.
    pub fn add(&mut self, kind: CapKind, data: &[u8], writable: &[u8]) -> Result<u16> {
        self.0.add_cap(kind, data, writable)
    }

    /// The offset of the visible capability `kind`.
    pub fn find(&self, kind: CapKind) -> Option<u16> {
        self.0.find(kind).map(|c| c.pos)
    }
}

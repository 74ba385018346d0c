// SPDX-License-Identifier: GPL-2.0

//! Which pages of a VF's BAR userspace may map directly.
//!
//! BAR pages are mapped straight into the user's address space (the VF's real MMIO, not a
//! copy), except the pages holding the MSI-X table and the PBA: those stay trappable, so
//! interrupt setup goes through the VFIO device (QEMU emulates MSI-X itself and programs the
//! vectors with `VFIO_DEVICE_SET_IRQS`). The mappable parts of a BAR are reported to
//! userspace as the areas of a sparse-mmap capability. This module is pure logic.

use kernel::prelude::*;

pub use crate::vfio::Area;

/// The mappable areas of a BAR of `bar_len` bytes, given the ranges that must stay trapped
/// (the MSI-X table and PBA, if they are in this BAR), with pages of `page` bytes.
///
/// Trapped ranges are widened to whole pages; what is left is returned in order. A BAR
/// smaller than a page cannot be mapped at all.
pub fn mappable_areas(bar_len: u64, trapped: &[Area], page: u64) -> Result<KVec<Area>> {
    let mut areas = KVec::new();
    if page == 0 || bar_len < page {
        return Ok(areas);
    }
    // Page-aligned holes, sorted and merged.
    let mut holes: KVec<Area> = KVec::new();
    for t in trapped.iter().filter(|t| t.size > 0 && t.offset < bar_len) {
        let start = t.offset / page * page;
        let end = t.end().min(bar_len).div_ceil(page) * page;
        holes.push(
            Area {
                offset: start,
                size: end - start,
            },
            GFP_KERNEL,
        )?;
    }
    holes.sort_unstable_by_key(|h| h.offset);
    let mut pos = 0u64;
    for h in holes.iter() {
        if h.offset > pos {
            areas.push(
                Area {
                    offset: pos,
                    size: h.offset - pos,
                },
                GFP_KERNEL,
            )?;
        }
        pos = pos.max(h.end());
    }
    let end = bar_len / page * page;
    if end > pos {
        areas.push(
            Area {
                offset: pos,
                size: end - pos,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(areas)
}

/// Whether `[offset, offset + len)` lies inside one of `areas`.
pub fn may_map(areas: &[Area], offset: u64, len: u64) -> bool {
    match offset.checked_add(len) {
        Some(end) if len > 0 => areas.iter().any(|a| offset >= a.offset && end <= a.end()),
        _ => false,
    }
}

/// The width of the next access of a region transfer with `remaining` bytes left at `pos`:
/// the largest power of two up to `max` (1, 2, 4 or 8) that is naturally aligned at `pos` and
/// not longer than what is left (so no access crosses its own alignment, as vfio-pci's
/// `vfio_pci_core_do_io_rw` splits them). 1 when nothing is left.
pub fn access_width(pos: u64, remaining: usize, max: u16) -> u16 {
    let mut n = max.clamp(1, 8).next_power_of_two();
    while n > 1 && (remaining < usize::from(n) || pos % u64::from(n) != 0) {
        n /= 2;
    }
    n
}

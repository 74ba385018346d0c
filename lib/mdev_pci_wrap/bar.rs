// SPDX-License-Identifier: GPL-2.0

//! Which pages of a VF's BAR userspace may map directly.
//!
//! BAR pages are mapped straight into the user's address space (the VF's real MMIO, not a
//! copy), except the pages holding the MSI-X table and the PBA: those stay trappable, so
//! interrupt setup goes through the VFIO device (QEMU emulates MSI-X itself and programs the
//! vectors with `VFIO_DEVICE_SET_IRQS`). The mappable parts of a BAR are reported to
//! userspace as the areas of a sparse-mmap capability. This module is pure logic.

use kernel::prelude::*;

/// A byte range `[offset, offset + size)` of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Start, in bytes from the BAR start.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Area {
    fn end(&self) -> u64 {
        self.offset + self.size
    }
}

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

// SPDX-License-Identifier: GPL-2.0

//! The PCI operations the VF-as-mdev logic performs on a VF, as safe functions.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h).
//!
//! The kernel's `pci::Device` offers no public access to what a VFIO device needs on the
//! function it passes through (user config-space accessors, the resource table, the MSI-X
//! capability, enable/disable, iomap of a BAR it did not request). They live here so that
//! `vf.rs` is free of `unsafe`.

use crate::{
    bar::Area,
    bindings, //
};
use core::ptr::NonNull;
use kernel::{
    error::to_result,
    mm::virt::VmaNew,
    pci,
    prelude::*,
    sync::aref::ARef, //
};

/// The raw `struct pci_dev` of `pdev`.
pub(crate) fn raw(pdev: &pci::Device) -> *mut bindings::pci_dev {
    // CAST: `pci::Device` is a transparent wrapper of `Opaque<struct pci_dev>` (its `as_raw`
    // is private to the kernel crate).
    core::ptr::from_ref(pdev)
        .cast::<bindings::pci_dev>()
        .cast_mut()
}

/// A resource of `pdev`: `(start, end, flags)`; `i` must be below 6.
pub fn resource(pdev: &pci::Device, i: usize) -> (u64, u64, usize) {
    // SAFETY: `pdev` is valid; the resource table has more than 6 entries.
    let res = unsafe { &(*raw(pdev)).resource[i.min(5)] };
    (res.start, res.end, res.flags)
}

/// The size of `pdev`'s config space (256 or 4096).
pub fn cfg_size(pdev: &pci::Device) -> u64 {
    // SAFETY: `pdev` is valid.
    u64::from(unsafe { (*raw(pdev)).cfg_size }.unsigned_abs())
}

/// The config-space offset of `pdev`'s MSI-X capability, or 0.
pub fn msix_cap(pdev: &pci::Device) -> u32 {
    // SAFETY: `pdev` is valid.
    u32::from(unsafe { (*raw(pdev)).msix_cap })
}

/// The config-space offset of `pdev`'s MSI capability, or 0.
pub fn msi_cap(pdev: &pci::Device) -> u32 {
    // SAFETY: `pdev` is valid.
    u32::from(unsafe { (*raw(pdev)).msi_cap })
}

/// A config dword as the kernel reads it (0 if the read fails).
pub fn config_dword(pdev: &pci::Device, off: u32) -> u32 {
    let mut v = 0u32;
    // SAFETY: `pdev` is valid and `v` writable.
    unsafe { bindings::pci_read_config_dword(raw(pdev), off as c_int, &mut v) };
    v
}

/// A config dword read on behalf of userspace (`pci_user_read_config_dword`).
pub fn user_read_config_dword(pdev: &pci::Device, off: u32) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: `pdev` is valid and `v` writable.
    let r = unsafe { bindings::pci_user_read_config_dword(raw(pdev), off as c_int, &mut v) };
    if r != 0 {
        return Err(EIO);
    }
    Ok(v)
}

/// Writes `len` (1, 2 or 4) bytes of config space on behalf of userspace.
pub fn user_write_config(pdev: &pci::Device, off: u32, len: u16, val: u32) -> Result {
    let p = raw(pdev);
    let off = off as c_int;
    // SAFETY: `p` is valid; the value is truncated to the access width.
    let r = unsafe {
        match len {
            1 => bindings::pci_user_write_config_byte(p, off, val as u8),
            2 => bindings::pci_user_write_config_word(p, off, val as u16),
            _ => bindings::pci_user_write_config_dword(p, off, val),
        }
    };
    if r != 0 {
        return Err(EIO);
    }
    Ok(())
}

/// Enables `pdev` (`pci_enable_device`); undo with [`disable`].
pub fn enable(pdev: &pci::Device) -> Result {
    // SAFETY: `pdev` is valid.
    to_result(unsafe { bindings::pci_enable_device(raw(pdev)) })
}

/// Disables `pdev` after [`enable`].
pub fn disable(pdev: &pci::Device) {
    // SAFETY: `pdev` is valid and was enabled.
    unsafe { bindings::pci_disable_device(raw(pdev)) }
}

/// Resets function `pdev` alone (FLR or another function-level method), saving and restoring
/// its config space around it; fails with `ENOTTY` if it has no such method and `EAGAIN` if
/// its device lock is held (e.g. while its driver is being unbound).
pub fn try_reset(pdev: &pci::Device) -> Result {
    // SAFETY: `pdev` is valid.
    to_result(unsafe { bindings::pci_try_reset_function(raw(pdev)) })
}

/// A copy of a function's config space, taken with [`SavedState::take`], to put back with
/// [`SavedState::restore`].
///
/// # Invariants
///
/// `state` is a `pci_store_saved_state` allocation owned by `self`.
pub struct SavedState {
    state: NonNull<bindings::pci_saved_state>,
}

// SAFETY: The saved state is plain memory owned by `self`.
unsafe impl Send for SavedState {}
// SAFETY: `&SavedState` gives no access to the memory.
unsafe impl Sync for SavedState {}

impl SavedState {
    /// Saves `pdev`'s config space as it is now; `None` if out of memory.
    pub fn take(pdev: &pci::Device) -> Option<Self> {
        // SAFETY: `pdev` is valid.
        unsafe { bindings::pci_save_state(raw(pdev)) };
        // SAFETY: `pdev` is valid and its state was just saved.
        let state = NonNull::new(unsafe { bindings::pci_store_saved_state(raw(pdev)) })?;
        // INVARIANT: Allocated just above.
        Some(Self { state })
    }

    /// Writes the saved config space back to `pdev` (the same function).
    pub fn restore(self, pdev: &pci::Device) {
        let mut state = self.state.as_ptr();
        core::mem::forget(self);
        // SAFETY: `state` is ours (type invariant, and `self` is forgotten); the call loads it
        // into `pdev`'s saved-state buffers and frees it.
        unsafe { bindings::pci_load_and_free_saved_state(raw(pdev), &mut state) };
        // SAFETY: `pdev` is valid and has a saved state.
        unsafe { bindings::pci_restore_state(raw(pdev)) };
    }
}

impl Drop for SavedState {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `state` is a kmalloc'ed allocation we own.
        unsafe { bindings::kfree(self.state.as_ptr().cast()) };
    }
}

/// Stops `pdev`'s DMA (clears bus mastering).
pub fn clear_master(pdev: &pci::Device) {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::pci_clear_master(raw(pdev)) }
}

/// Maps BAR `bar` of `pdev` from byte `offset` (page aligned) into the whole of `vma`,
/// uncached. The caller checked that the range lies in the BAR and may be mapped.
pub fn mmap_bar(vma: &VmaNew, pdev: &pci::Device, bar: u32, offset: u64) -> Result {
    vma.set_io();
    vma.set_dontexpand();
    vma.set_dontdump();
    // SAFETY: `vma` is being set up; `pdev` is valid and `bar` one of its memory BARs
    // (caller); the helper maps exactly the VMA's range.
    to_result(unsafe {
        bindings::mpw_helper_mmap_bar(vma.as_ptr(), raw(pdev), bar as c_int, offset)
    })
}

/// The location of the MSI-X table and PBA in BAR `bar` of `pdev` (empty areas if elsewhere).
pub fn msix_ranges(pdev: &pci::Device, bar: usize) -> [Area; 2] {
    let none = Area { offset: 0, size: 0 };
    let cap = msix_cap(pdev);
    if cap == 0 {
        return [none, none];
    }
    let entries = ((config_dword(pdev, cap) >> 16) & 0x7ff) + 1;
    let table = config_dword(pdev, cap + bindings::PCI_MSIX_TABLE);
    let pba = config_dword(pdev, cap + bindings::PCI_MSIX_PBA);
    let range = |reg: u32, size: u64| {
        if (reg & 0x7) as usize == bar {
            Area {
                offset: u64::from(reg & !0x7),
                size,
            }
        } else {
            none
        }
    };
    [
        range(table, u64::from(entries) * 16),
        range(pba, u64::from(entries.div_ceil(64)) * 8),
    ]
}

/// A memory BAR of a VF mapped into the kernel (`pci_iomap`), unmapped on drop.
///
/// # Invariants
///
/// `addr` is the `pci_iomap` mapping of `len` bytes of a BAR of `pdev`.
pub struct IoMap {
    pdev: ARef<pci::Device>,
    addr: *mut c_void,
    len: u64,
}

// SAFETY: MMIO mappings are not tied to a thread; accesses are single MMIO operations.
unsafe impl Send for IoMap {}
// SAFETY: See above; `&IoMap` only allows bounds-checked MMIO accesses.
unsafe impl Sync for IoMap {}

impl IoMap {
    /// Maps the whole of memory BAR `bar` (`len` bytes) of the enabled `pdev`.
    pub fn new(pdev: ARef<pci::Device>, bar: u32, len: u64) -> Result<Self> {
        // SAFETY: `pdev` is valid and enabled; `bar` is one of its memory BARs (caller).
        let addr = unsafe { bindings::pci_iomap(raw(&pdev), bar as c_int, 0) };
        if addr.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: Mapped just above.
        Ok(Self { pdev, addr, len })
    }

    fn at(&self, off: u64, width: u16) -> Result<*mut c_void> {
        if !matches!(width, 1 | 2 | 4) || off % u64::from(width) != 0 {
            return Err(EINVAL);
        }
        match off.checked_add(u64::from(width)) {
            // SAFETY: `off + width <= len`: inside the mapping (type invariant).
            Some(end) if end <= self.len => Ok(unsafe { self.addr.byte_add(off as usize) }),
            _ => Err(EINVAL),
        }
    }

    /// Reads `width` (1, 2 or 4) bytes at the aligned offset `off`.
    pub fn read(&self, off: u64, width: u16) -> Result<u32> {
        let a = self.at(off, width)?;
        // SAFETY: `a` is an aligned address inside the live mapping.
        Ok(unsafe {
            match width {
                1 => bindings::ioread8(a),
                2 => bindings::ioread16(a),
                _ => bindings::ioread32(a),
            }
        })
    }

    /// Writes `width` (1, 2 or 4) bytes of `val` at the aligned offset `off`.
    pub fn write(&self, off: u64, width: u16, val: u32) -> Result {
        let a = self.at(off, width)?;
        // SAFETY: `a` is an aligned address inside the live mapping.
        unsafe {
            match width {
                1 => bindings::iowrite8(val as u8, a),
                2 => bindings::iowrite16(val as u16, a),
                _ => bindings::iowrite32(val, a),
            }
        }
        Ok(())
    }

    /// The mapped size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }
}

impl Drop for IoMap {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `addr` is a live mapping of `pdev`, unmapped once.
        unsafe { bindings::pci_iounmap(raw(&self.pdev), self.addr) };
    }
}

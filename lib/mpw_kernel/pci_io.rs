// SPDX-License-Identifier: GPL-2.0

//! The PCI operations the VF-as-mdev logic performs on a VF, as safe functions.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h).
//!
//! The kernel's `pci::Device` offers no public access to what a VFIO device needs on the
//! function it passes through (user config-space accessors, the resource table, the MSI-X
//! capability, enable/disable, iomap of a BAR it did not request). They live here so that
//! `vf.rs` is free of `unsafe`.
//!
//! What reads the `struct pci_dev` alone takes any `pci::Device`. What touches the function
//! (config space, power, reset, VPD, a page to map) takes it in the bound-device context,
//! and what holds the function after it returns (an enable, claimed regions, a kernel mapping,
//! a saved state, a runtime-PM reference) holds a [`BoundFunction`], so that it is undone
//! before the function's driver is unbound.

use crate::{
    bindings,
    bound_function::BoundFunction,
    vfio::Area, //
};
use core::ptr::NonNull;
use kernel::{
    device::Bound,
    error::to_result,
    pci,
    prelude::*, //
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
pub fn config_dword(pdev: &pci::Device<Bound>, off: u32) -> u32 {
    let mut v = 0u32;
    // SAFETY: `pdev` is valid and `v` writable.
    unsafe { bindings::pci_read_config_dword(raw(pdev), off as c_int, &mut v) };
    v
}

/// A config dword read on behalf of userspace (`pci_user_read_config_dword`).
pub fn user_read_config_dword(pdev: &pci::Device<Bound>, off: u32) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: `pdev` is valid and `v` writable.
    let r = unsafe { bindings::pci_user_read_config_dword(raw(pdev), off as c_int, &mut v) };
    if r != 0 {
        return Err(EIO);
    }
    Ok(v)
}

/// Writes `len` (1, 2 or 4) bytes of config space on behalf of userspace.
pub fn user_write_config(pdev: &pci::Device<Bound>, off: u32, len: u16, val: u32) -> Result {
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

/// Reads `len` (1, 2 or 4) bytes of config space on behalf of userspace.
pub fn user_read_config(pdev: &pci::Device<Bound>, off: u32, len: u16) -> Result<u32> {
    let p = raw(pdev);
    let off = off as c_int;
    let r;
    let v = match len {
        1 => {
            let mut b = 0u8;
            // SAFETY: `p` is valid and `b` writable.
            r = unsafe { bindings::pci_user_read_config_byte(p, off, &mut b) };
            u32::from(b)
        }
        2 => {
            let mut w = 0u16;
            // SAFETY: `p` is valid and `w` writable.
            r = unsafe { bindings::pci_user_read_config_word(p, off, &mut w) };
            u32::from(w)
        }
        4 => {
            let mut d = 0u32;
            // SAFETY: `p` is valid and `d` writable.
            r = unsafe { bindings::pci_user_read_config_dword(p, off, &mut d) };
            d
        }
        _ => return Err(EINVAL),
    };
    if r != 0 {
        return Err(EIO);
    }
    Ok(v)
}

/// A snapshot of `pdev`'s whole config space (`cfg_size` bytes), as the kernel reads it.
pub fn config_snapshot(pdev: &pci::Device<Bound>) -> Result<KVec<u8>> {
    let size = cfg_size(pdev) as usize;
    let mut v = KVec::with_capacity(size, GFP_KERNEL)?;
    for off in (0..size).step_by(4) {
        v.extend_from_slice(&config_dword(pdev, off as u32).to_le_bytes(), GFP_KERNEL)?;
    }
    Ok(v)
}

/// Whether `pdev` is an SR-IOV virtual function.
pub fn is_virtfn(pdev: &pci::Device) -> bool {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::mpw_helper_pci_is_virtfn(raw(pdev)) }
}

/// Whether `pdev` does not decode memory by its COMMAND register (VFs, some quirks).
pub fn no_command_memory(pdev: &pci::Device) -> bool {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::mpw_helper_pci_no_command_memory(raw(pdev)) }
}

/// The header type of `pdev` (`PCI_HEADER_TYPE_NORMAL` = 0, bridge = 1, CardBus = 2).
pub fn header_type(pdev: &pci::Device) -> u8 {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::mpw_helper_pci_hdr_type(raw(pdev)) }
}

/// How many VFs `pdev` has enabled (0 for a function without SR-IOV).
pub fn num_vf(pdev: &pci::Device) -> u32 {
    // SAFETY: `pdev` is valid.
    u32::try_from(unsafe { bindings::pci_num_vf(raw(pdev)) }).unwrap_or(0)
}

/// The power state the PCI core believes `pdev` is in (0 = D0 .. 3 = D3hot, 4 = D3cold).
pub fn power_state(pdev: &pci::Device) -> i32 {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::mpw_helper_pci_current_state(raw(pdev)) }
}

/// Puts `pdev` in power state `state` (0 = D0 .. 3 = D3hot) through the PCI core, keeping
/// its config space in `pm_save` across D3hot if the function would lose it, as vfio-pci.
pub fn set_power_state(pdev: &pci::Device<Bound>, state: u8, pm_save: &mut PmSave) -> Result {
    if state > 3 {
        return Err(EINVAL);
    }
    // SAFETY: `pdev` is valid; `pm_save.0` is null or a `pci_store_saved_state` allocation
    // owned by `pm_save`, which the helper frees or replaces.
    to_result(unsafe {
        bindings::mpw_helper_set_power_state(raw(pdev), c_int::from(state), &raw mut pm_save.0)
    })
}

/// The config space a function keeps across D3hot (see [`set_power_state`]).
pub struct PmSave(*mut bindings::pci_saved_state);

// SAFETY: Plain memory owned by `self`.
unsafe impl Send for PmSave {}
// SAFETY: `&PmSave` gives no access.
unsafe impl Sync for PmSave {}

impl Default for PmSave {
    fn default() -> Self {
        Self(core::ptr::null_mut())
    }
}

impl Drop for PmSave {
    fn drop(&mut self) {
        // SAFETY: Null or a kmalloc'ed saved state we own.
        unsafe { bindings::kfree(self.0.cast()) };
    }
}

/// Sets `pdev`'s maximum read request size to `bytes`, but not below its maximum payload
/// size (vfio-pci's policy: the user has no system-wide view).
pub fn set_readrq(pdev: &pci::Device<Bound>, bytes: u32) -> Result {
    // SAFETY: `pdev` is valid.
    let mps = unsafe { bindings::pcie_get_mps(raw(pdev)) };
    let rq = (bytes as c_int).max(mps);
    // SAFETY: `pdev` is valid; the PCI core checks the value.
    to_result(unsafe { bindings::pcie_set_readrq(raw(pdev), rq) })
}

/// Reads 4 bytes of VPD at `addr` through the PCI core's VPD access (with its quirks).
pub fn read_vpd(pdev: &pci::Device<Bound>, addr: u16) -> Result<u32> {
    let mut d = 0u32;
    // SAFETY: `pdev` is valid; `d` is 4 writable bytes.
    let n = unsafe {
        bindings::pci_read_vpd(
            raw(pdev),
            addr.into(),
            4,
            core::ptr::from_mut(&mut d).cast(),
        )
    };
    if n != 4 {
        return Err(EIO);
    }
    Ok(d)
}

/// Writes 4 bytes of VPD at `addr` through the PCI core.
pub fn write_vpd(pdev: &pci::Device<Bound>, addr: u16, data: u32) -> Result {
    let d = data;
    // SAFETY: `pdev` is valid; `d` is 4 readable bytes.
    let n = unsafe {
        bindings::pci_write_vpd(raw(pdev), addr.into(), 4, core::ptr::from_ref(&d).cast())
    };
    if n != 4 {
        return Err(EIO);
    }
    Ok(())
}

/// A runtime-PM reference on `pdev`: the function stays active (D0) while it lives.
///
/// # Invariants
///
/// `pm_runtime_resume_and_get` succeeded on the function; put once, on drop.
pub struct RuntimePm(BoundFunction);

impl RuntimePm {
    /// Resumes `func` and holds it active.
    pub fn get(func: &BoundFunction) -> Result<Self> {
        let p = raw(func.dev());
        // SAFETY: `p` is valid; `struct pci_dev` embeds its `struct device` at `dev`.
        to_result(unsafe { bindings::mpw_helper_pm_runtime_get(&raw mut (*p).dev) })?;
        // INVARIANT: Got just above.
        Ok(Self(func.clone()))
    }
}

impl Drop for RuntimePm {
    fn drop(&mut self) {
        let p = raw(self.0.dev());
        // SAFETY: `p` is valid (the function is bound: `self.0` lives); by the type invariant
        // we hold one reference.
        unsafe { bindings::mpw_helper_pm_runtime_put(&raw mut (*p).dev) }
    }
}

/// `pdev` enabled (`pci_enable_device`) for as long as this lives.
///
/// # Invariants
///
/// `pci_enable_device` succeeded on the function and is undone exactly once, on drop.
pub struct Enabled(BoundFunction);

impl Enabled {
    /// Enables `func`.
    pub fn new(func: &BoundFunction) -> Result<Self> {
        // SAFETY: The function is valid and bound.
        to_result(unsafe { bindings::pci_enable_device(raw(func.dev())) })?;
        // INVARIANT: Enabled just above.
        Ok(Self(func.clone()))
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device was enabled by us, and is still bound.
        unsafe { bindings::pci_disable_device(raw(self.0.dev())) }
    }
}

/// The memory BARs of a function claimed for a user (`pci_request_selected_regions`), so that
/// no other driver, `/dev/mem` user or sysfs `resourceN` mapping gets them meanwhile.
///
/// # Invariants
///
/// The regions of `mask` are requested by us until drop.
pub struct Regions {
    func: BoundFunction,
    mask: c_int,
}

impl Regions {
    /// Requests the BARs of `func` whose bits are set in `mask` (bit `i`: BAR `i`).
    pub fn request(func: &BoundFunction, mask: u8) -> Result<Self> {
        let mask = c_int::from(mask & 0x3f);
        // SAFETY: The function is valid and bound; the name is a static string.
        to_result(unsafe {
            bindings::pci_request_selected_regions(
                raw(func.dev()),
                mask,
                kernel::c_str!("mdev_pci_wrap").as_char_ptr(),
            )
        })?;
        // INVARIANT: Requested just above.
        Ok(Self {
            func: func.clone(),
            mask,
        })
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        // SAFETY: By the type invariant these regions are ours.
        unsafe { bindings::pci_release_selected_regions(raw(self.func.dev()), self.mask) }
    }
}

/// Resets function `pdev` alone (FLR or another function-level method), saving and restoring
/// its config space around it; fails with `ENOTTY` if it has no such method and `EAGAIN` if
/// its device lock is held (e.g. while its driver is being unbound).
pub fn try_reset(pdev: &pci::Device<Bound>) -> Result {
    // SAFETY: `pdev` is valid.
    to_result(unsafe { bindings::pci_try_reset_function(raw(pdev)) })
}

/// A copy of a function's config space, taken with [`SavedState::take`], to put back with
/// [`SavedState::restore`].
///
/// # Invariants
///
/// `state` is a `pci_store_saved_state` allocation of `func`'s config space, owned by `self`.
pub struct SavedState {
    state: NonNull<bindings::pci_saved_state>,
    func: BoundFunction,
}

// SAFETY: The saved state is plain memory owned by `self`.
unsafe impl Send for SavedState {}
// SAFETY: `&SavedState` gives no access to the memory.
unsafe impl Sync for SavedState {}

impl SavedState {
    /// Saves `func`'s config space as it is now; `None` if out of memory.
    pub fn take(func: &BoundFunction) -> Option<Self> {
        let p = raw(func.dev());
        // SAFETY: The function is valid and bound.
        unsafe { bindings::pci_save_state(p) };
        // SAFETY: The function is valid and its state was just saved.
        let state = NonNull::new(unsafe { bindings::pci_store_saved_state(p) })?;
        // INVARIANT: Allocated just above, for `func`.
        Some(Self {
            state,
            func: func.clone(),
        })
    }

    /// Writes the saved config space back to the function it was taken from.
    pub fn restore(self) {
        let this = core::mem::ManuallyDrop::new(self);
        let mut state = this.state.as_ptr();
        // SAFETY: `this` is never dropped, so its `func` is moved out exactly once.
        let func = unsafe { core::ptr::read(&this.func) };
        let p = raw(func.dev());
        // SAFETY: `state` is ours (type invariant, and `this` is not dropped); the call loads
        // it into the function's saved-state buffers and frees it.
        unsafe { bindings::pci_load_and_free_saved_state(p, &mut state) };
        // SAFETY: The function is valid, bound (`func` lives) and has a saved state.
        unsafe { bindings::pci_restore_state(p) };
    }
}

impl Drop for SavedState {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `state` is a kmalloc'ed allocation we own.
        unsafe { bindings::kfree(self.state.as_ptr().cast()) };
    }
}

/// Stops `pdev`'s DMA (clears bus mastering).
pub fn clear_master(pdev: &pci::Device<Bound>) {
    // SAFETY: `pdev` is valid.
    unsafe { bindings::pci_clear_master(raw(pdev)) }
}

/// A page of a memory BAR, which a fault handler may map into userspace.
///
/// # Invariants
///
/// `pfn` is the page frame of a page inside a memory BAR of a PCI function.
pub struct BarPage {
    pfn: usize,
}

impl BarPage {
    /// The page at byte `offset` (page aligned) of memory BAR `bar` of `pdev`; `EINVAL` if
    /// that is not inside a memory BAR.
    pub fn new(pdev: &pci::Device<Bound>, bar: u32, offset: u64) -> Result<Self> {
        if bar > 5 || offset % bindings::PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        let (start, end, flags) = resource(pdev, bar as usize);
        if end <= start || flags & bindings::IORESOURCE_MEM as usize == 0 {
            return Err(EINVAL);
        }
        let len = (end - start + 1).next_multiple_of(bindings::PAGE_SIZE as u64);
        if offset >= len {
            return Err(EINVAL);
        }
        // INVARIANT: `start + offset` is inside the BAR's (page-rounded) resource.
        Ok(Self {
            pfn: ((start + offset) >> bindings::PAGE_SHIFT) as usize,
        })
    }

    /// The page frame number.
    pub fn pfn(&self) -> usize {
        self.pfn
    }
}

/// The location of the MSI-X table and PBA in BAR `bar` of `pdev` (empty areas if elsewhere).
pub fn msix_ranges(pdev: &pci::Device<Bound>, bar: usize) -> [Area; 2] {
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

/// A BAR of a function mapped into the kernel (`pci_iomap`: memory or I/O), unmapped on
/// drop.
///
/// # Invariants
///
/// `addr` is the `pci_iomap` mapping of the whole BAR of `func`, which is `len` bytes.
pub struct IoMap {
    func: BoundFunction,
    addr: *mut c_void,
    len: u64,
    /// An I/O-port BAR (`addr` is a port cookie only `ioread*`/`iowrite*` understand).
    io: bool,
}

// SAFETY: MMIO mappings are not tied to a thread; accesses are single MMIO operations.
unsafe impl Send for IoMap {}
// SAFETY: See above; `&IoMap` only allows bounds-checked MMIO accesses.
unsafe impl Sync for IoMap {}

impl IoMap {
    /// Maps the whole of BAR `bar` of `func`; `EINVAL` if there is no such BAR.
    pub fn new(func: &BoundFunction, bar: u32) -> Result<Self> {
        if bar > 5 {
            return Err(EINVAL);
        }
        let (start, end, flags) = resource(func.dev(), bar as usize);
        if end <= start {
            return Err(EINVAL);
        }
        let len = end - start + 1;
        let io = flags & bindings::IORESOURCE_IO as usize != 0;
        // SAFETY: The function is valid and bound, and `bar` one of its BARs; `maxlen` 0 maps
        // the whole BAR.
        let addr = unsafe { bindings::pci_iomap(raw(func.dev()), bar as c_int, 0) };
        if addr.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: The whole BAR, `len` bytes, mapped just above.
        Ok(Self {
            func: func.clone(),
            addr,
            len,
            io,
        })
    }

    fn at(&self, off: u64, width: u16) -> Result<*mut c_void> {
        if !matches!(width, 1 | 2 | 4 | 8) || off % u64::from(width) != 0 {
            return Err(EINVAL);
        }
        match off.checked_add(u64::from(width)) {
            // SAFETY: `off + width <= len`: inside the mapping (type invariant).
            Some(end) if end <= self.len => Ok(unsafe { self.addr.byte_add(off as usize) }),
            _ => Err(EINVAL),
        }
    }

    /// Reads `width` (1, 2, 4 or 8) bytes at the aligned offset `off`. An 8-byte access is
    /// one 64-bit MMIO read (as vfio-pci's `ioread64`), or two 32-bit ones, low first, on
    /// an I/O BAR.
    pub fn read(&self, off: u64, width: u16) -> Result<u64> {
        let a = self.at(off, width)?;
        // SAFETY: `a` is an aligned address inside the live mapping (and `a + 4` for the
        // split 8-byte read).
        Ok(unsafe {
            match width {
                1 => u64::from(bindings::ioread8(a)),
                2 => u64::from(bindings::ioread16(a)),
                4 => u64::from(bindings::ioread32(a)),
                _ if !self.io => bindings::readq(a),
                _ => {
                    u64::from(bindings::ioread32(a))
                        | (u64::from(bindings::ioread32(a.byte_add(4))) << 32)
                }
            }
        })
    }

    /// Writes `width` (1, 2, 4 or 8) bytes of `val` at the aligned offset `off`.
    pub fn write(&self, off: u64, width: u16, val: u64) -> Result {
        let a = self.at(off, width)?;
        // SAFETY: `a` is an aligned address inside the live mapping (and `a + 4` for the
        // split 8-byte write).
        unsafe {
            match width {
                1 => bindings::iowrite8(val as u8, a),
                2 => bindings::iowrite16(val as u16, a),
                4 => bindings::iowrite32(val as u32, a),
                _ if !self.io => bindings::writeq(val, a),
                _ => {
                    bindings::iowrite32(val as u32, a);
                    bindings::iowrite32((val >> 32) as u32, a.byte_add(4));
                }
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
        // SAFETY: By the type invariant `addr` is a live mapping of the function, unmapped
        // once, while it is bound.
        unsafe { bindings::pci_iounmap(raw(self.func.dev()), self.addr) };
    }
}

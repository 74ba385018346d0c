// SPDX-License-Identifier: GPL-2.0

//! Binding a physical device to a user's iommufd context.
//!
//! C header: [`include/linux/iommufd.h`](srctree/include/linux/iommufd.h).
//!
//! This is how a wrapped VF does DMA: when userspace binds the mdev's VFIO device to its
//! iommufd context (cdev `VFIO_DEVICE_BIND_IOMMUFD`, or a group opened through `/dev/iommu`),
//! the library binds **the VF** (`iommufd_device_bind` on the VF's `struct device`) and
//! attaches it to the user's IOAS, so the VF's DMA is translated by the real IOMMU through
//! the user's mappings. Binding claims DMA ownership of the VF's whole IOMMU group for that
//! context.
//!
//! The functions here are `#[inline(never)]`: they are called from generic library code that
//! is instantiated in vendor modules, and must stay in this module, which imports the
//! `IOMMUFD` symbol namespace.

use crate::{
    bindings,
    mdev::AsRawDevice, //
};
use core::ptr::{
    self,
    NonNull, //
};
use kernel::{
    device,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_ulong,
        c_void, //
    },
    prelude::*,
    sync::aref::ARef,
    types::Opaque, //
};

/// A user's iommufd context (`struct iommufd_ctx`), as the VFIO core passes it to a bind.
///
/// # Invariants
///
/// A reference to it is only handed out while the VFIO core holds the context.
#[repr(transparent)]
pub struct Ctx(Opaque<bindings::iommufd_ctx>);

impl Ctx {
    /// Creates a reference from the VFIO core's pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid iommufd context for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::iommufd_ctx) -> &'a Self {
        // SAFETY: `Ctx` is a transparent wrapper; validity is the caller's guarantee.
        unsafe { &*ptr.cast() }
    }
}

/// Returns another member of `dev`'s IOMMU group bound to a driver that uses the kernel DMA
/// API: as long as there is one, userspace cannot own the group.
#[inline(never)]
pub fn group_dma_blocker(dev: &device::Device) -> Option<ARef<device::Device>> {
    // SAFETY: `dev` is a valid device.
    let found = unsafe { bindings::mpw_helper_group_dma_blocker(dev.as_raw_mut()) };
    let found = NonNull::new(found)?;
    // SAFETY: The helper returned a device with a reference that we take over.
    Some(unsafe { ARef::from_raw(found.cast()) })
}

/// A physical device bound to an iommufd context, optionally attached to an IOAS.
///
/// # Invariants
///
/// `idev` came from a successful `iommufd_device_bind` and is not unbound yet; `attached`
/// says whether it is attached (without PASID).
pub struct BoundDevice {
    idev: NonNull<bindings::iommufd_device>,
    attached: bool,
}

// SAFETY: The iommufd object is not tied to a thread; iommufd locks internally.
unsafe impl Send for BoundDevice {}
// SAFETY: `&BoundDevice` allows no operation.
unsafe impl Sync for BoundDevice {}

impl BoundDevice {
    /// Binds `dev` to `ctx`, claiming DMA ownership of its IOMMU group; returns the binding
    /// and the device ID iommufd allocated. (Bound devices only: the claim is the driver's,
    /// whose `driver_managed_dma` the IOMMU core checks. The owner of the returned binding
    /// must drop it before the device is unbound, e.g. by holding a
    /// [`crate::bound_function::BoundFunction`] of it beside.)
    #[inline(never)]
    pub fn bind(ctx: &Ctx, dev: &device::Device<device::Bound>) -> Result<(Self, u32)> {
        let mut id = 0u32;
        // SAFETY: `ctx` is live (type invariant), `dev` is valid, `id` is writable.
        let idev = unsafe { bindings::iommufd_device_bind(ctx.0.get(), dev.as_raw_mut(), &mut id) };
        let idev = from_err_ptr(idev)?;
        // INVARIANT: Bound just above, not attached.
        Ok((
            Self {
                // SAFETY: `from_err_ptr` succeeded, so `idev` is a valid, non-null pointer.
                idev: unsafe { NonNull::new_unchecked(idev) },
                attached: false,
            },
            id,
        ))
    }

    /// Attaches to the IOAS or HWPT `pt_id` (replacing an attachment); iommufd may update
    /// `pt_id` to the HWPT it chose.
    #[inline(never)]
    pub fn attach(&mut self, pt_id: &mut u32) -> Result {
        // SAFETY: By the type invariant `idev` is bound; `pt_id` is writable.
        to_result(unsafe {
            if self.attached {
                bindings::iommufd_device_replace(self.idev.as_ptr(), 0, pt_id)
            } else {
                bindings::iommufd_device_attach(self.idev.as_ptr(), 0, pt_id)
            }
        })?;
        // INVARIANT: Attached just above.
        self.attached = true;
        Ok(())
    }

    /// Detaches from the IOAS, if attached.
    #[inline(never)]
    pub fn detach(&mut self) {
        if self.attached {
            // SAFETY: By the type invariant `idev` is bound and attached.
            unsafe { bindings::iommufd_device_detach(self.idev.as_ptr(), 0) };
            // INVARIANT: Detached just above.
            self.attached = false;
        }
    }
}

impl Drop for BoundDevice {
    #[inline(never)]
    fn drop(&mut self) {
        self.detach();
        // SAFETY: By the type invariant `idev` is bound; it is unbound exactly once, here.
        unsafe { bindings::iommufd_device_unbind(self.idev.as_ptr()) };
    }
}

/// Called by iommufd when the user unmaps IOVA that an access has pinned. [`Access`] never
/// pins pages (it reads and writes through the IOAS on each call), so there is nothing to
/// give back; iommufd calls it unconditionally, so it must exist.
extern "C" fn access_unmap(_data: *mut c_void, _iova: c_ulong, _length: c_ulong) {}

/// The operations of every [`Access`]: no page pinning.
static ACCESS_OPS: bindings::iommufd_access_ops = bindings::iommufd_access_ops {
    // `needs_pin_pages` is 0.
    _bitfield_1: bindings::__BindgenBitfieldUnit::new([0]),
    unmap: Some(access_unmap),
};

/// The kernel's own access to a user's I/O virtual addresses: an iommufd access object of a
/// context, attached to one of its IOASes, through which the kernel reads and writes the
/// memory the user mapped there (what a device attached to that IOAS reaches by DMA).
///
/// Reading or writing may fault in the user's pages: never call them while holding a lock
/// that a page fault of that user's memory may take.
///
/// # Invariants
///
/// `access` came from a successful `iommufd_access_create` and is not destroyed yet;
/// `attached` says whether it is attached to an IOAS.
pub struct Access {
    access: NonNull<bindings::iommufd_access>,
    attached: bool,
}

// SAFETY: The access object is not tied to a thread; iommufd locks internally.
unsafe impl Send for Access {}
// SAFETY: `read`/`write` through `&Access` are serialised by iommufd (`ioas_lock`).
unsafe impl Sync for Access {}

impl Access {
    /// Creates an access of `ctx`, attached to nothing.
    #[inline(never)]
    pub fn new(ctx: &Ctx) -> Result<Self> {
        let mut id = 0u32;
        // SAFETY: `ctx` is live (type invariant of `Ctx`); `ACCESS_OPS` is static and has
        // `unmap`; `data` is unused; `id` is writable.
        let access = unsafe {
            bindings::iommufd_access_create(ctx.0.get(), &ACCESS_OPS, ptr::null_mut(), &mut id)
        };
        let access = from_err_ptr(access)?;
        // INVARIANT: Created just above, not attached.
        Ok(Self {
            // SAFETY: `from_err_ptr` succeeded, so `access` is a valid, non-null pointer.
            access: unsafe { NonNull::new_unchecked(access) },
            attached: false,
        })
    }

    /// Attaches to the IOAS `ioas_id` of the context (replacing an attachment). Fails for an
    /// ID that is not an IOAS of this context (a HWPT, for example).
    #[inline(never)]
    pub fn attach(&mut self, ioas_id: u32) -> Result {
        // SAFETY: By the type invariant `access` is live.
        to_result(unsafe {
            if self.attached {
                bindings::iommufd_access_replace(self.access.as_ptr(), ioas_id)
            } else {
                bindings::iommufd_access_attach(self.access.as_ptr(), ioas_id)
            }
        })?;
        // INVARIANT: Attached just above.
        self.attached = true;
        Ok(())
    }

    /// Detaches from the IOAS, if attached.
    #[inline(never)]
    pub fn detach(&mut self) {
        if self.attached {
            // SAFETY: By the type invariant `access` is live and attached.
            unsafe { bindings::iommufd_access_detach(self.access.as_ptr()) };
            // INVARIANT: Detached just above.
            self.attached = false;
        }
    }

    /// Reads `buf.len()` bytes at `iova` of the IOAS. `ENOENT` when not attached or not all
    /// of the range is mapped, `EINVAL` for an empty buffer, `EOVERFLOW` for a range past the
    /// end of the IOVA space, `EFAULT` when the user's memory is gone.
    #[inline(never)]
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result {
        self.rw(
            iova,
            buf.as_mut_ptr(),
            buf.len(),
            bindings::IOMMUFD_ACCESS_RW_READ,
        )
    }

    /// Writes `buf` at `iova` of the IOAS; errors as [`Access::read`], and `EPERM` for memory
    /// the user mapped read-only.
    #[inline(never)]
    pub fn write(&self, iova: u64, buf: &[u8]) -> Result {
        // iommufd only reads from `data` for a write.
        self.rw(
            iova,
            buf.as_ptr().cast_mut(),
            buf.len(),
            bindings::IOMMUFD_ACCESS_RW_WRITE,
        )
    }

    fn rw(&self, iova: u64, data: *mut u8, len: usize, flags: u32) -> Result {
        if !self.attached {
            return Err(ENOENT);
        }
        let iova = c_ulong::try_from(iova).map_err(|_| EOVERFLOW)?;
        // SAFETY: By the type invariant `access` is live; `data` points to `len` bytes the
        // caller lent for the call (written only for a read, from a `&mut [u8]`).
        to_result(unsafe {
            bindings::iommufd_access_rw(self.access.as_ptr(), iova, data.cast(), len, flags)
        })
    }
}

impl Drop for Access {
    #[inline(never)]
    fn drop(&mut self) {
        self.detach();
        // SAFETY: By the type invariant `access` is live; it is destroyed exactly once, here.
        unsafe { bindings::iommufd_access_destroy(self.access.as_ptr()) };
    }
}

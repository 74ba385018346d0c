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
use core::ptr::NonNull;
use kernel::{
    device,
    error::{
        from_err_ptr,
        to_result, //
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
    /// and the device ID iommufd allocated.
    #[inline(never)]
    pub fn bind(ctx: &Ctx, dev: &device::Device) -> Result<(Self, u32)> {
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

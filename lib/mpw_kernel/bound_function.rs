// SPDX-License-Identifier: GPL-2.0

//! A counted reference to a PCI function that keeps its driver bound while it lives.
//!
//! The kernel hands a driver a `pci::Device<Bound>` for the duration of a bus callback, and
//! `Devres` for what must not outlive the binding. A VFIO device needs more than either: it
//! resets, enables, claims and maps the function from its own callbacks (open, close, an
//! ioctl, a fault), which sleep, long after probe returned and while the driver may be
//! unbinding. A [`BoundFunction`] is the proof those callbacks need: the adapter of
//! [`crate::pci_driver`] creates one per bound function, hands out clones, and waits, when it
//! drops the driver's data in the unbind, until every clone is gone. So a [`BoundFunction`]
//! is only ever alive while the function is bound, and [`BoundFunction::dev`] can give the
//! bound-device context that the PCI operations of [`crate::pci_io`] ask for.
//!
//! Whoever holds one delays the unbind: the library keeps them in its VFIO devices, which
//! the driver's remove unregisters (waiting for their users) before the wait. A thread must
//! not make the function's driver unbind while it holds one of its [`BoundFunction`]s.
//!
//! Why wait rather than revoke (as `Devres` does): a revocable access is an RCU read
//! section, and what a VFIO device does with the function (a reset, a power-state change)
//! sleeps; and waiting for the users of the function is what the VFIO core does anyway when
//! the device is unregistered (`vfio_unregister_group_dev`).

use kernel::{
    device, pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::Relaxed,
        Arc,
        Completion,
        Refcount, //
    },
};

#[pin_data]
struct Inner {
    pdev: ARef<pci::Device>,
    /// The live [`BoundFunction`]s, plus one for the [`Binding`] until it is dropped.
    users: Refcount,
    /// Completed when `users` reaches zero.
    #[pin]
    idle: Completion,
}

/// A PCI function bound to a driver of [`crate::pci_driver::Adapter`], which stays bound for
/// as long as this lives.
///
/// # Invariants
///
/// `inner.users` counts `self`; the [`Binding`] of the function, which its adapter drops in
/// the unbind before the driver core releases the device's devres and clears its driver
/// (`device_unbind_cleanup`), waits until no [`BoundFunction`] of it is left. So the function
/// is bound while `self` lives.
///
/// # Examples
///
/// ```ignore
/// // In a callback of the VFIO device that holds `func` (a clone of the one the adapter
/// // gave the driver at probe):
/// pci_io::try_reset(func.dev())?;
/// let enabled = pci_io::Enabled::new(&func)?; // holds a clone: disabled while bound
/// ```
pub struct BoundFunction {
    inner: Arc<Inner>,
}

impl BoundFunction {
    /// The function, in the bound-device context.
    pub fn dev(&self) -> &pci::Device<device::Bound> {
        let pdev: &pci::Device = &self.inner.pdev;
        // CAST: `pci::Device<Ctx>` is a transparent wrapper of `Opaque<struct pci_dev>` for
        // every context (the kernel offers `as_bound` for `device::Device` only).
        let ptr = core::ptr::from_ref(pdev).cast::<pci::Device<device::Bound>>();
        // SAFETY: `ptr` points to a valid `pci::Device` (it comes from a reference), and the
        // function is bound while `self`, which the returned reference borrows, lives (type
        // invariant).
        unsafe { &*ptr }
    }

    /// The function in the normal context (for its name and IDs; `.into()` gives a reference
    /// that may outlive the binding).
    pub fn pdev(&self) -> &pci::Device {
        &self.inner.pdev
    }
}

/// A new [`BoundFunction`] of `inner`, whose count must not be zero (a [`Binding`] or a
/// [`BoundFunction`] of it is alive).
fn user(inner: &Arc<Inner>) -> BoundFunction {
    // INVARIANT: Counted before it exists.
    inner.users.inc();
    BoundFunction {
        inner: inner.clone(),
    }
}

impl Clone for BoundFunction {
    fn clone(&self) -> Self {
        // `self` counts one user.
        user(&self.inner)
    }
}

impl Drop for BoundFunction {
    fn drop(&mut self) {
        if self.inner.users.dec_and_test() {
            self.inner.idle.complete_all();
        }
    }
}

/// The binding of a function to a driver, which ends (on drop) only when no
/// [`BoundFunction`] of it is left. Owned by the adapter, in the driver data.
///
/// # Invariants
///
/// Counts one of `inner.users` until dropped; dropped in the function's unbind (the safety
/// requirement of [`Binding::new`]).
pub(crate) struct Binding {
    inner: Arc<Inner>,
}

impl Binding {
    /// The binding of `dev`.
    ///
    /// # Safety
    ///
    /// The binding must be stored in `dev`'s driver data, dropped by the driver core in the
    /// unbind (`post_unbind_rust`), and never leaked nor kept past it: its [`BoundFunction`]s
    /// give `dev` in the bound context for as long as it lives.
    pub(crate) unsafe fn new(dev: &pci::Device<device::Bound>) -> Result<Self> {
        let pdev: ARef<pci::Device> = dev.into();
        let inner = Arc::pin_init(
            pin_init!(Inner {
                pdev,
                users: Refcount::new(1),
                idle <- Completion::new(),
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: `users` starts at one: ours.
        Ok(Self { inner })
    }

    /// A [`BoundFunction`] of this binding.
    pub(crate) fn function(&self) -> BoundFunction {
        // The binding, alive, counts one user.
        user(&self.inner)
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        if self.inner.users.dec_and_test() {
            return;
        }
        dev_warn!(
            self.inner.pdev.as_ref(),
            "unbind waits for {} remaining user(s) of the function\n",
            self.inner.users.as_atomic().load(Relaxed)
        );
        self.inner.idle.wait_for_completion();
    }
}

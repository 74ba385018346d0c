// SPDX-License-Identifier: GPL-2.0

//! virqfd: a user's eventfd whose signals the kernel acts on (vfio's `vfio_virqfd_*`).
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h).
//!
//! A VFIO device takes an eventfd from userspace (the INTx unmask eventfd: an irqfd that a VMM
//! with KVM resamples when the guest completes the interrupt) and runs a callback, in process
//! context on a workqueue, each time it is signalled. The callback holds a reference to its
//! target for as long as it may run; closing the eventfd ends it too.

use core::{
    marker::PhantomData,
    ptr, //
};
use kernel::{
    error::to_result,
    ffi::c_void,
    prelude::*,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque,
};

use crate::bindings;

/// What a signal of the eventfd runs: `f(&target)`.
struct Target<U: AlwaysRefCounted> {
    target: ARef<U>,
    f: fn(&U),
}

/// A cell for one virqfd calling `f(&target)` (a `U`) on each signal of a user's eventfd.
///
/// # Invariants
///
/// `cell` is the `struct virqfd *` vfio owns and updates under its own lock (it clears it when
/// the eventfd is closed). While `target` is `Some`, a virqfd enabled on `cell` may hold its
/// pointer as `data` and call [`Virqfd::thread`] with it; once [`Virqfd::disable`] returned,
/// none does, and none is enabled again until `target` is set again.
#[pin_data(PinnedDrop)]
pub struct Virqfd<U: AlwaysRefCounted + Send + Sync + 'static> {
    #[pin]
    cell: Opaque<*mut bindings::virqfd>,
    target: Option<KBox<Target<U>>>,
    _u: PhantomData<U>,
}

// SAFETY: `cell` is only touched by vfio under its lock and by `&mut` methods; the target is
// `Send + Sync`.
unsafe impl<U: AlwaysRefCounted + Send + Sync + 'static> Send for Virqfd<U> {}
// SAFETY: `&Virqfd` allows no operation.
unsafe impl<U: AlwaysRefCounted + Send + Sync + 'static> Sync for Virqfd<U> {}

impl<U: AlwaysRefCounted + Send + Sync + 'static> Virqfd<U> {
    /// An empty cell.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            cell: Opaque::new(ptr::null_mut()),
            target: None,
            _u: PhantomData,
        })
    }

    /// Runs `f(&target)` on each signal of the caller's eventfd `fd` (and at once if it is
    /// signalled already), in process context, until [`Virqfd::disable`] or the eventfd's
    /// close; replaces what was enabled. `EBADF`/`EINVAL` for an `fd` that is not an eventfd.
    pub fn enable(self: Pin<&mut Self>, target: ARef<U>, f: fn(&U), fd: i32) -> Result {
        // SAFETY: No field is moved out; `cell` stays pinned.
        let this = unsafe { self.get_unchecked_mut() };
        this.disable_inner();
        let boxed = KBox::new(Target { target, f }, GFP_KERNEL_ACCOUNT)?;
        let data = ptr::from_ref::<Target<U>>(&boxed)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `cell` is pinned and null (disabled above, or never enabled; vfio only ever
        // clears it). `data` points to the boxed target, which is kept in `this.target` until
        // `disable` returned, after which vfio no longer calls `thread`. `thread` matches the
        // C signature; no handler is given (the callback sleeps: it runs on the workqueue).
        to_result(unsafe {
            bindings::vfio_virqfd_enable(
                ptr::null_mut(),
                None,
                Some(Self::thread),
                data,
                this.cell.get(),
                fd,
            )
        })?;
        // INVARIANT: Enabled with `data` pointing into the box kept here.
        this.target = Some(boxed);
        Ok(())
    }

    /// Stops it: when this returns, the callback no longer runs and its target reference is
    /// dropped. Sleeps (it waits for a callback that is running).
    pub fn disable(self: Pin<&mut Self>) {
        // SAFETY: No field is moved out.
        unsafe { self.get_unchecked_mut() }.disable_inner();
    }

    fn disable_inner(&mut self) {
        if self.target.is_none() {
            return;
        }
        // SAFETY: `cell` is pinned and owned by vfio's virqfd code; `vfio_virqfd_disable`
        // deactivates a virqfd still in it and flushes vfio's cleanup workqueue, so no
        // callback of this cell runs after it returned (also for one the eventfd's close
        // ended already).
        unsafe { bindings::vfio_virqfd_disable(self.cell.get()) };
        // INVARIANT: Nothing refers to the target any more.
        self.target = None;
    }

    /// The callback vfio runs on the workqueue for each signal.
    ///
    /// # Safety
    ///
    /// `data` is the pointer [`Virqfd::enable`] passed, its virqfd not disabled yet.
    unsafe extern "C" fn thread(_opaque: *mut c_void, data: *mut c_void) {
        // SAFETY: By the function's contract and the type invariant, `data` points to the
        // `Target<U>` boxed in `target`, alive until `disable` returns.
        let t = unsafe { &*data.cast::<Target<U>>() };
        (t.f)(&t.target);
    }
}

#[pinned_drop]
impl<U: AlwaysRefCounted + Send + Sync + 'static> PinnedDrop for Virqfd<U> {
    fn drop(self: Pin<&mut Self>) {
        self.disable();
    }
}

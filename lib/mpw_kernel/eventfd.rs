// SPDX-License-Identifier: GPL-2.0

//! eventfd: how a VFIO device notifies userspace (interrupts, removal requests).
//!
//! C header: [`include/linux/eventfd.h`](srctree/include/linux/eventfd.h).

use core::ptr::NonNull;
use kernel::{
    // Not `crate::bindings`: the vfio headers declare their own incomplete `eventfd_ctx`.
    bindings,
    error::from_err_ptr,
    prelude::*, //
};

/// A reference to the eventfd context behind a user's file descriptor.
///
/// # Invariants
///
/// `self.0` is a counted reference to a live `struct eventfd_ctx`, put on drop.
pub struct EventFd(NonNull<bindings::eventfd_ctx>);

// SAFETY: An eventfd context is reference counted and signalled under its own lock, from any
// thread and from hard interrupt context.
unsafe impl Send for EventFd {}
// SAFETY: See above: `signal` is the only operation through `&EventFd`.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// Takes a reference to the eventfd context of the caller's file descriptor `fd`.
    ///
    /// Fails with `EBADF` if `fd` is not open and `EINVAL` if it is not an eventfd.
    pub fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: `eventfd_ctx_fdget` accepts any integer and looks it up in the caller's
        // file table.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        let ctx = NonNull::new(ctx).ok_or(EINVAL)?;
        // INVARIANT: `eventfd_ctx_fdget` returned a counted reference.
        Ok(Self(ctx))
    }

    /// Adds 1 to the eventfd's counter, waking its readers. Callable from any context,
    /// including hard interrupt handlers.
    pub fn signal(&self) {
        // SAFETY: By the type invariant the context is live.
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference.
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) }
    }
}

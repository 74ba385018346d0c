// SPDX-License-Identifier: GPL-2.0

//! MSI and MSI-X vectors of a PCI function, each forwarding its interrupts to an eventfd.
//!
//! C headers: [`include/linux/pci.h`](srctree/include/linux/pci.h),
//! [`include/linux/interrupt.h`](srctree/include/linux/interrupt.h).
//!
//! The host owns the vectors of a function given to userspace: it allocates them
//! (`pci_alloc_irq_vectors`), programs the device's MSI/MSI-X registers, and requests each
//! interrupt with a handler that signals the eventfd userspace registered for that vector
//! (`VFIO_DEVICE_SET_IRQS`). This is what vfio-pci does in `vfio_pci_intrs.c`.
//!
//! The kernel's `pci::IrqVectorRegistration` borrows a `pci::Device<Bound>` for its lifetime,
//! which a VFIO device, living from open to close, cannot express; hence this small type,
//! which holds a [`BoundFunction`] instead.

use crate::{
    bindings,
    bound_function::BoundFunction,
    eventfd::EventFd,
    pci_io, //
};
use kernel::{
    device::Bound,
    error::to_result,
    pci,
    prelude::*,
    str::CString, //
};

/// Which kind of message-signalled interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    /// MSI: up to 32 vectors sharing one address, programmed in config space.
    Msi,
    /// MSI-X: a table of vectors in a BAR.
    MsiX,
}

impl IrqKind {
    fn flag(self) -> u32 {
        match self {
            IrqKind::Msi => bindings::PCI_IRQ_MSI,
            IrqKind::MsiX => bindings::PCI_IRQ_MSIX,
        }
    }

    fn label(self) -> &'static str {
        match self {
            IrqKind::Msi => "msi",
            IrqKind::MsiX => "msix",
        }
    }
}

/// How many vectors of `kind` `pdev` supports (0 without the capability).
pub fn vector_count(pdev: &pci::Device<Bound>, kind: IrqKind) -> u32 {
    let raw = pci_io::raw(pdev);
    // SAFETY: `raw` is a valid PCI device.
    let n = unsafe {
        match kind {
            IrqKind::Msi => bindings::pci_msi_vec_count(raw),
            IrqKind::MsiX => bindings::pci_msix_vec_count(raw),
        }
    };
    // Negative: no such capability.
    u32::try_from(n).unwrap_or(0)
}

/// What a vector's interrupt handler needs; boxed, its address is the `request_irq` cookie.
struct TriggerData {
    eventfd: EventFd,
    /// The name in `/proc/interrupts`; `request_irq` keeps the pointer.
    _name: CString,
}

/// An interrupt handler signalling an eventfd.
///
/// # Invariants
///
/// A handler is registered for `irq` with `request_irq`, with the address of `*data` as its
/// cookie, until drop.
struct Trigger {
    irq: u32,
    data: KBox<TriggerData>,
}

impl Trigger {
    fn new(irq: u32, eventfd: EventFd, name: CString) -> Result<Self> {
        let data = KBox::new(
            TriggerData {
                eventfd,
                _name: name,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let cookie = core::ptr::from_ref::<TriggerData>(&data).cast_mut();
        // SAFETY: `handler` has the signature `request_irq` expects and only reads a
        // `TriggerData` through the cookie, which stays at the same address (it is boxed) until
        // `drop` has freed the handler. The name lives in that box too.
        to_result(unsafe {
            bindings::request_irq(
                irq,
                Some(handler),
                0,
                data._name.as_char_ptr(),
                cookie.cast(),
            )
        })?;
        // INVARIANT: Registered just above with `cookie`.
        Ok(Self { irq, data })
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let cookie = core::ptr::from_ref::<TriggerData>(&self.data).cast_mut();
        // SAFETY: By the type invariant the handler is registered with this cookie. `free_irq`
        // waits for running handlers, so nothing uses `data` once it returns and the box is
        // freed after this function.
        unsafe { bindings::free_irq(self.irq, cookie.cast()) };
    }
}

/// The interrupt handler of a [`Trigger`].
///
/// # Safety
///
/// `cookie` must be the address of the `TriggerData` of a live [`Trigger`].
unsafe extern "C" fn handler(_irq: c_int, cookie: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: By the safety requirements.
    let data = unsafe { &*cookie.cast::<TriggerData>() };
    data.eventfd.signal();
    bindings::irqreturn::IRQ_HANDLED
}

/// The MSI or MSI-X vectors of a function, each optionally forwarded to an eventfd.
///
/// # Invariants
///
/// `triggers.len()` vectors of `kind` are allocated on `func` by `pci_alloc_irq_vectors` while
/// `self` lives; `triggers[i]` is a handler on vector `i` (or none).
pub struct IrqVectors {
    func: BoundFunction,
    kind: IrqKind,
    triggers: KVec<Option<Trigger>>,
}

impl IrqVectors {
    /// Allocates `count` vectors of `kind` on `func` (which should be enabled); the host
    /// programs the device's MSI or MSI-X registers and enables them.
    ///
    /// Returns `Ok(Err(n))`, having allocated nothing, if only `n < count` vectors are to be
    /// had (callers may retry with `n`).
    pub fn alloc(
        func: &BoundFunction,
        kind: IrqKind,
        count: u32,
    ) -> Result<core::result::Result<Self, u32>> {
        if count == 0 {
            return Err(EINVAL);
        }
        // User-sized (the vectors a SET_IRQS request names): accounted to the user.
        let mut triggers = KVec::with_capacity(count as usize, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..count {
            triggers.push(None, GFP_KERNEL_ACCOUNT)?;
        }
        // One set of vectors per function: a second one would free the first's on drop.
        let p = pci_io::raw(func.dev());
        // SAFETY: `p` is a valid PCI device.
        if unsafe { bindings::mpw_helper_pci_irq_vectors_in_use(p) } {
            return Err(EBUSY);
        }
        // SAFETY: `p` is a valid, bound PCI device without MSI or MSI-X vectors (checked just
        // above; callers serialise their `IrqVectors` of a function).
        let n = unsafe { bindings::pci_alloc_irq_vectors(p, 1, count, kind.flag()) };
        to_result(n)?;
        // `n` is positive and at most `count`.
        let n = n as u32;
        if n < count {
            // SAFETY: Allocated just above, with no handler registered.
            unsafe { bindings::pci_free_irq_vectors(p) };
            return Ok(Err(n));
        }
        // INVARIANT: `count` vectors allocated, one trigger slot each.
        Ok(Ok(Self {
            func: func.clone(),
            kind,
            triggers,
        }))
    }

    /// The kind of the vectors.
    pub fn kind(&self) -> IrqKind {
        self.kind
    }

    /// How many vectors are allocated.
    pub fn count(&self) -> u32 {
        // The count came in as a `u32`.
        self.triggers.len() as u32
    }

    /// Forwards the interrupts of vector `i` to `eventfd`, replacing what vector `i` was
    /// forwarded to. On error, vector `i` is forwarded to nothing.
    pub fn set_trigger(&mut self, i: u32, eventfd: EventFd) -> Result {
        let slot = self.triggers.get_mut(i as usize).ok_or(EINVAL)?;
        // Free the old handler first: the new one may share the eventfd.
        *slot = None;
        // SAFETY: The function is valid and has `i + 1` or more vectors allocated (type
        // invariant).
        let irq = unsafe { bindings::pci_irq_vector(pci_io::raw(self.func.dev()), i) };
        let irq = u32::try_from(irq).map_err(|_| EINVAL)?;
        let name = CString::try_from_fmt(fmt!(
            "mpw-{}[{}]({})",
            self.kind.label(),
            i,
            self.func.pdev().as_ref().name()
        ))?;
        *slot = Some(Trigger::new(irq, eventfd, name)?);
        Ok(())
    }

    /// Stops forwarding the interrupts of vector `i` (if it exists).
    pub fn clear_trigger(&mut self, i: u32) {
        if let Some(slot) = self.triggers.get_mut(i as usize) {
            *slot = None;
        }
    }

    /// Signals the eventfd of vector `i`, if it has one, as its interrupt would; returns
    /// whether it had one.
    pub fn fire(&self, i: u32) -> bool {
        match self.triggers.get(i as usize) {
            Some(Some(t)) => {
                t.data.eventfd.signal();
                true
            }
            _ => false,
        }
    }
}

impl Drop for IrqVectors {
    fn drop(&mut self) {
        // Free the handlers before their vectors.
        self.triggers.clear();
        // SAFETY: By the type invariant the vectors are allocated on the function (still
        // bound: `func` lives), and no handler is registered on them any more.
        unsafe { bindings::pci_free_irq_vectors(pci_io::raw(self.func.dev())) };
    }
}

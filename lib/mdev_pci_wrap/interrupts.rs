// SPDX-License-Identifier: GPL-2.0

//! The interrupts of a wrapped VF, as its VFIO device presents them to userspace.
//!
//! C reference for the behaviour: `drivers/vfio/pci/vfio_pci_intrs.c`.
//!
//! - INTx: none for a VF as it is (PCIe SR-IOV VFs have no pin): the index reports 0 vectors.
//!   A vendor that presents a pin gets an emulated line ([`Intx`]) with vfio-pci's semantics:
//!   level-triggered, signalled to the trigger eventfd and masked automatically, unmasked by
//!   `VFIO_DEVICE_SET_IRQS` (`ACTION_UNMASK`, or a signal of the unmask eventfd set with
//!   `ACTION_UNMASK | DATA_EVENTFD`), after which a line still asserted signals again.
//! - MSI and MSI-X: host-owned vectors forwarded to the user's eventfds
//!   ([`crate::irq::IrqVectors`]). Enabling allocates exactly the vectors the request names
//!   (`start + count`); the indexes are `NORESIZE`: growing an enabled set needs a disable
//!   first, as userspace (QEMU) does for such devices. At most one of the two is enabled.
//! - ERR: one eventfd for PCI Express functions, signalled when AER error recovery reports
//!   an uncorrectable error on the function (`error_detected`), as vfio-pci.
//! - REQ: one eventfd, signalled while the mdev is being removed and userspace still holds it.
//!
//! Data-less and boolean triggers fire the eventfds from the kernel, for loopback tests.

use crate::{
    bindings,
    bound_function::BoundFunction,
    eventfd::EventFd,
    irq::{
        self,
        IrqKind,
        IrqVectors, //
    },
    user_dbg,
    vfio::{
        IrqAction,
        IrqData,
        IrqSet, //
    },
};
use kernel::{
    device,
    pci,
    prelude::*, //
};

/// How many vectors each interrupt index of a VF has, fixed when the VFIO device is created.
#[derive(Clone, Copy, Debug)]
pub struct IrqCounts {
    intx: u32,
    msi: u32,
    msix: u32,
    err: u32,
}

impl IrqCounts {
    /// The vectors `pdev`'s MSI and MSI-X capabilities offer; an ERR vector if it is a PCI
    /// Express function (`pcie`).
    pub fn of(pdev: &pci::Device<device::Bound>, pcie: bool) -> Self {
        Self {
            intx: 0,
            msi: irq::vector_count(pdev, IrqKind::Msi),
            msix: irq::vector_count(pdev, IrqKind::MsiX),
            err: u32::from(pcie),
        }
    }

    /// The same with an emulated INTx line (a vendor's).
    pub fn with_intx(self) -> Self {
        Self { intx: 1, ..self }
    }

    /// The number of vectors of interrupt index `index`.
    pub fn vectors(&self, index: u32) -> u32 {
        match index {
            bindings::VFIO_PCI_INTX_IRQ_INDEX => self.intx,
            bindings::VFIO_PCI_MSI_IRQ_INDEX => self.msi,
            bindings::VFIO_PCI_MSIX_IRQ_INDEX => self.msix,
            bindings::VFIO_PCI_ERR_IRQ_INDEX => self.err,
            bindings::VFIO_PCI_REQ_IRQ_INDEX => 1,
            _ => 0,
        }
    }

    /// The `VFIO_IRQ_INFO_*` flags of interrupt index `index`.
    pub fn flags(index: u32) -> u32 {
        let mut flags = bindings::VFIO_IRQ_INFO_EVENTFD;
        if index == bindings::VFIO_PCI_INTX_IRQ_INDEX {
            flags |= bindings::VFIO_IRQ_INFO_MASKABLE | bindings::VFIO_IRQ_INFO_AUTOMASKED;
        } else {
            flags |= bindings::VFIO_IRQ_INFO_NORESIZE;
        }
        flags
    }
}

/// The MSI/MSI-X kind of an interrupt index, if it is one.
fn kind_of(index: u32) -> Option<IrqKind> {
    match index {
        bindings::VFIO_PCI_MSI_IRQ_INDEX => Some(IrqKind::Msi),
        bindings::VFIO_PCI_MSIX_IRQ_INDEX => Some(IrqKind::MsiX),
        _ => None,
    }
}

/// An emulated INTx line: vfio-pci's level-triggered semantics over an eventfd. The default
/// is disabled (no trigger), unmasked, deasserted.
#[derive(Default)]
pub struct Intx {
    trigger: Option<EventFd>,
    /// Masked by the user, or automatically when the line was signalled.
    masked: bool,
    /// The line is asserted (by the vendor).
    asserted: bool,
}

impl Intx {
    /// Signals the line if it is asserted, enabled, unmasked and not disabled (`disabled`:
    /// INTx-disable in the user's COMMAND register), masking it (automask); returns whether
    /// it signalled.
    fn deliver(&mut self, disabled: bool) -> bool {
        match &self.trigger {
            Some(t) if self.asserted && !self.masked && !disabled => {
                t.signal();
                self.masked = true;
                true
            }
            _ => false,
        }
    }

    /// The vendor sets the line's level; returns whether it was signalled.
    pub fn set_level(&mut self, asserted: bool, disabled: bool) -> bool {
        let rising = asserted && !self.asserted;
        self.asserted = asserted;
        rising && self.deliver(disabled)
    }

    /// The user unmasks the line (`ACTION_UNMASK`, or a signal of its unmask eventfd): a line
    /// still asserted signals again; `disabled` as for [`Intx::set_level`].
    pub fn unmask(&mut self, disabled: bool) {
        self.masked = false;
        self.deliver(disabled);
    }

    /// Carries out `VFIO_DEVICE_SET_IRQS` on the INTx index (vfio-pci's
    /// `vfio_pci_set_intx_trigger`, `_mask` and `_unmask`); `disabled` as for
    /// [`Intx::set_level`]. What it leaves to the caller, the unmask eventfd, is returned.
    pub fn set(&mut self, req: &IrqSet, disabled: bool) -> Result<UnmaskFd> {
        let range = req.range();
        match req.action() {
            IrqAction::Trigger => match req.data() {
                IrqData::None if range.is_empty() => {
                    self.trigger = None;
                    Ok(UnmaskFd::Remove)
                }
                IrqData::EventFds(fds) => match fds.first().copied() {
                    Some(fd) if fd >= 0 => {
                        self.trigger = Some(EventFd::from_fd(fd)?);
                        self.masked = false;
                        Ok(UnmaskFd::Keep)
                    }
                    _ => {
                        self.trigger = None;
                        Ok(UnmaskFd::Remove)
                    }
                },
                // Loopback: signal the trigger, as vfio-pci's `vfio_send_intx_eventfd`.
                IrqData::Bools(b) if !b.first().copied().unwrap_or(false) => Ok(UnmaskFd::Keep),
                _ => {
                    if let Some(t) = &self.trigger {
                        t.signal();
                    }
                    Ok(UnmaskFd::Keep)
                }
            },
            IrqAction::Mask | IrqAction::Unmask => {
                if self.trigger.is_none() || range != (0..1) {
                    return Err(EINVAL);
                }
                let on = match req.data() {
                    IrqData::None => true,
                    IrqData::Bools(b) => b.first().copied().unwrap_or(false),
                    // The unmask eventfd: an irqfd a VMM with KVM resamples (as vfio-pci;
                    // there is no mask eventfd).
                    IrqData::EventFds(fds) if req.action() == IrqAction::Unmask => {
                        return Ok(match fds.first().copied() {
                            Some(fd) if fd >= 0 => UnmaskFd::Set(fd),
                            _ => UnmaskFd::Remove,
                        });
                    }
                    // (vfio-pci has no mask eventfd either.)
                    IrqData::EventFds(_) => return Err(EOPNOTSUPP),
                };
                if on {
                    if req.action() == IrqAction::Mask {
                        self.masked = true;
                    } else {
                        self.unmask(disabled);
                    }
                }
                Ok(UnmaskFd::Keep)
            }
        }
    }
}

/// What becomes of the INTx unmask eventfd after a `VFIO_DEVICE_SET_IRQS` on the INTx index
/// ([`Intx::set`]): its virqfd sleeps while it is set up or torn down, so the caller does it,
/// outside the interrupt lock its callback takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmaskFd {
    /// Unchanged.
    Keep,
    /// Unmask on each signal of this eventfd (replacing one set before).
    Set(i32),
    /// No unmask eventfd (the user removed it, or INTx was disabled).
    Remove,
}

/// The interrupt state of an open wrapped VF; the default has no vectors and no REQ eventfd.
#[derive(Default)]
pub struct Interrupts {
    /// The emulated INTx line, if the vendor presents one.
    pub intx: Intx,
    /// The enabled MSI or MSI-X vectors.
    vectors: Option<IrqVectors>,
    /// The REQ eventfd.
    req: Option<EventFd>,
}

impl Interrupts {
    /// Carries out `VFIO_DEVICE_SET_IRQS` for VF `func`; `dev` is named in messages.
    ///
    /// Returns 0, or, when enabling MSI or MSI-X vectors found fewer than requested, how many
    /// there are (nothing enabled; userspace may ask again for that many, as with vfio-pci).
    pub fn set(&mut self, dev: &device::Device, func: &BoundFunction, req: IrqSet) -> Result<u32> {
        if req.action() != IrqAction::Trigger {
            // Masking is neither offered for INTx (absent) nor for MSI/MSI-X (as in
            // vfio-pci), nor for REQ.
            return Err(ENOTTY);
        }
        match kind_of(req.index()) {
            Some(kind) => self.set_msi(dev, func, kind, &req),
            None if req.index() == bindings::VFIO_PCI_REQ_IRQ_INDEX => {
                set_single(&mut self.req, &req)?;
                Ok(0)
            }
            // The core already refused indexes without vectors.
            None => Err(EINVAL),
        }
    }

    fn set_msi(
        &mut self,
        dev: &device::Device,
        func: &BoundFunction,
        kind: IrqKind,
        req: &IrqSet,
    ) -> Result<u32> {
        let range = req.range();
        let enabled = self.vectors.as_ref().map(IrqVectors::kind);
        if enabled == Some(kind) && range.is_empty() && matches!(req.data(), IrqData::None) {
            self.vectors = None;
            return Ok(0);
        }
        if enabled.is_some_and(|k| k != kind) {
            user_dbg!(
                dev,
                "SET_IRQS: {:?} requested while {:?} is enabled\n",
                kind,
                enabled
            );
            return Err(EINVAL);
        }
        match req.data() {
            IrqData::EventFds(fds) => {
                let newly = self.vectors.is_none();
                if newly {
                    match IrqVectors::alloc(func, kind, range.end) {
                        Ok(Ok(v)) => self.vectors = Some(v),
                        Ok(Err(available)) => {
                            user_dbg!(
                                dev,
                                "SET_IRQS: {} {:?} vectors requested, {} available\n",
                                range.end,
                                kind,
                                available
                            );
                            return Ok(available);
                        }
                        Err(e) => {
                            dev_warn!(
                                dev,
                                "cannot enable {} {:?} vectors on {}: {:?}\n",
                                range.end,
                                kind,
                                func.pdev().as_ref().name(),
                                e
                            );
                            return Err(e);
                        }
                    }
                }
                let vectors = self.vectors.as_mut().ok_or(EINVAL)?;
                if range.end > vectors.count() {
                    user_dbg!(
                        dev,
                        "SET_IRQS: vectors {}..{} of {} enabled (disable to resize)\n",
                        range.start,
                        range.end,
                        vectors.count()
                    );
                    return Err(EINVAL);
                }
                let r = set_block(vectors, range.start, fds);
                if let Err(e) = r {
                    user_dbg!(
                        dev,
                        "SET_IRQS: cannot use eventfds for {:?}: {:?}\n",
                        kind,
                        e
                    );
                    if newly {
                        self.vectors = None;
                    }
                }
                r.map(|()| 0)
            }
            data => {
                // Loopback: fire the eventfds of the enabled vectors in the range.
                let vectors = self.vectors.as_ref().ok_or(EINVAL)?;
                for (k, i) in range.enumerate() {
                    if let IrqData::Bools(b) = data {
                        if !b.get(k).copied().unwrap_or(false) {
                            continue;
                        }
                    }
                    vectors.fire(i);
                }
                Ok(0)
            }
        }
    }

    /// Signals the user's eventfd of a vendor-raised interrupt, if that vector is enabled
    /// and has one; returns whether it did.
    pub fn raise(&self, irq: crate::vendor::Irq) -> bool {
        let (kind, n) = match irq {
            crate::vendor::Irq::Msi(n) => (IrqKind::Msi, n),
            crate::vendor::Irq::MsiX(n) => (IrqKind::MsiX, n),
        };
        match &self.vectors {
            Some(v) if v.kind() == kind => v.fire(n),
            _ => false,
        }
    }

    /// Signals the REQ eventfd, if userspace set one; returns whether it did.
    pub fn signal_request(&self) -> bool {
        match &self.req {
            Some(e) => {
                e.signal();
                true
            }
            None => false,
        }
    }

    /// Frees every vector and eventfd (at close).
    pub fn clear(&mut self) {
        self.intx = Intx::default();
        self.vectors = None;
        self.req = None;
    }
}

/// Carries out `VFIO_DEVICE_SET_IRQS` (trigger) on an index with one eventfd, `slot` (ERR,
/// REQ), as vfio-pci's `vfio_pci_set_ctx_trigger_single`.
pub fn set_single(slot: &mut Option<EventFd>, req: &IrqSet) -> Result {
    if req.action() != IrqAction::Trigger {
        return Err(ENOTTY);
    }
    // The core checked `start == 0` and `count <= 1`.
    let count = req.range().len();
    match req.data() {
        IrqData::None => {
            let Some(e) = slot.as_ref() else {
                return Err(EINVAL);
            };
            if count == 0 {
                *slot = None;
            } else {
                e.signal();
            }
        }
        IrqData::Bools(b) => match b.first() {
            None => return Err(EINVAL),
            Some(true) => {
                if let Some(e) = slot.as_ref() {
                    e.signal();
                }
            }
            Some(false) => {}
        },
        IrqData::EventFds(fds) => match fds.first() {
            None => return Err(EINVAL),
            Some(-1) => *slot = None,
            Some(&fd) if fd >= 0 => *slot = Some(EventFd::from_fd(fd)?),
            // Other negative numbers change nothing (as vfio-pci).
            Some(_) => {}
        },
    }
    Ok(())
}

/// Points vectors `start..start + fds.len()` at the eventfds `fds` (negative: none). On error
/// the vectors from `start` up to the failing one point at nothing, as vfio-pci leaves them.
fn set_block(vectors: &mut IrqVectors, start: u32, fds: &[i32]) -> Result {
    for (i, &fd) in (start..).zip(fds.iter()) {
        let r = if fd < 0 {
            vectors.clear_trigger(i);
            Ok(())
        } else {
            EventFd::from_fd(fd).and_then(|e| vectors.set_trigger(i, e))
        };
        if let Err(e) = r {
            for j in start..=i {
                vectors.clear_trigger(j);
            }
            return Err(e);
        }
    }
    Ok(())
}

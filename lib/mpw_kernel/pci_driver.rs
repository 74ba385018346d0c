// SPDX-License-Identifier: GPL-2.0

//! A PCI driver for the VFs this library wraps, with `driver_managed_dma` set.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h).
//!
//! The kernel's `pci::Adapter` cannot set `driver_managed_dma`, which tells the DMA API and
//! the IOMMU core that the driver, not the kernel, owns DMA for the device: without it the
//! IOMMU core refuses to hand the VF's IOMMU group to userspace (iommufd) while the VF is
//! bound. This adapter is otherwise the same as `kernel::pci::Adapter`, and plugs into the
//! kernel's generic [`kernel::driver::Registration`].
//!
//! It also gives the driver a [`BoundFunction`] at probe, and ends the binding only when the
//! last of its clones is gone: what the library's VFIO devices hold to act on the function.

use crate::{
    bindings,
    bound_function::{
        Binding,
        BoundFunction, //
    },
};
use core::marker::PhantomData;
use kernel::{
    device,
    driver,
    error::{
        from_result,
        to_result, //
    },
    pci,
    prelude::*,
    types::Opaque,
    ThisModule, //
};

/// A table of PCI IDs, terminated by an all-zero entry, in static memory.
pub struct IdTable(&'static [bindings::pci_device_id]);

impl IdTable {
    /// No IDs: only devices whose `driver_override` names the driver bind to it.
    pub const OVERRIDE_ONLY: Self = Self(&[pin_init::zeroed()]);

    fn as_ptr(&self) -> *const bindings::pci_device_id {
        self.0.as_ptr()
    }
}

/// A PCI driver whose devices' DMA is managed by the driver (through the IOMMU, for userspace).
pub trait Driver: Send + Sync + 'static {
    /// The driver's per-device data.
    type Data: Send + Sync;

    /// The IDs to bind to (besides `driver_override`).
    const ID_TABLE: IdTable;

    /// Binds to `dev`; `func` is the function in the bound context, which the driver may
    /// keep (and clone) for as long as it needs it: the unbind waits for the last clone.
    fn probe(
        dev: &pci::Device<device::Core<'_>>,
        func: BoundFunction,
    ) -> impl PinInit<Self::Data, Error>;

    /// Unbinds from `dev`; the data is dropped afterwards.
    fn unbind(dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        let _ = (dev, data);
    }

    /// PCI error recovery found an uncorrectable error on `dev` (AER `error_detected`).
    fn error_detected(dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) -> ErsResult;

    /// `dev` is about to be reset by the PCI core (a function, slot or bus reset, whoever
    /// asked for it), under its device lock: stop using it.
    fn reset_prepare(dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        let _ = (dev, data);
    }

    /// The reset announced by [`Driver::reset_prepare`] is over and the PCI core restored
    /// `dev`'s saved config space.
    fn reset_done(dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        let _ = (dev, data);
    }
}

/// What PCI error recovery should do next, a driver's vote (`pci_ers_result_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErsResult {
    /// The driver can recover without a reset.
    CanRecover,
    /// The driver needs a slot reset.
    NeedReset,
    /// The device cannot be recovered.
    Disconnect,
}

impl ErsResult {
    fn to_raw(self) -> bindings::pci_ers_result_t {
        match self {
            Self::CanRecover => bindings::pci_ers_result_PCI_ERS_RESULT_CAN_RECOVER,
            Self::NeedReset => bindings::pci_ers_result_PCI_ERS_RESULT_NEED_RESET,
            Self::Disconnect => bindings::pci_ers_result_PCI_ERS_RESULT_DISCONNECT,
        }
    }
}

/// The registration adapter of a [`Driver`].
pub struct Adapter<T: Driver>(PhantomData<T>);

/// The driver data of a function bound through an [`Adapter`]: the driver's, then the
/// binding, dropped in that order (the unbind waits in the binding's drop for the
/// [`BoundFunction`]s the driver's data did not hold).
#[doc(hidden)]
#[pin_data]
pub struct BoundData<D> {
    #[pin]
    data: D,
    binding: Binding,
}

impl<D> BoundData<D> {
    fn data(self: Pin<&Self>) -> Pin<&D> {
        // SAFETY: `data` is structurally pinned (`#[pin]`); it is not moved out.
        unsafe { self.map_unchecked(|b| &b.data) }
    }
}

// SAFETY:
// - `bindings::pci_driver` is a C type declared as `repr(C)`.
// - `BoundData<T::Data>` is the type of the driver's device private data (see
//   `probe_callback`).
// - `struct pci_driver` embeds a `struct device_driver` at `DEVICE_DRIVER_OFFSET`.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::pci_driver;
    type DriverData<'bound> = BoundData<T::Data>;
    const DEVICE_DRIVER_OFFSET: usize = core::mem::offset_of!(Self::DriverType, driver);
}

// SAFETY: `unregister` is only called after a successful `register` of the same `pdrv`.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        pdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let p = pdrv.get();
        // SAFETY: `p` is valid and not registered yet, so its fields can be set.
        unsafe {
            (*p).name = name.as_char_ptr();
            (*p).probe = Some(Self::probe_callback);
            (*p).remove = Some(Self::remove_callback);
            (*p).id_table = T::ID_TABLE.as_ptr();
            (*p).driver_managed_dma = true;
            (*p).err_handler = &Self::ERR_HANDLERS;
        }
        // SAFETY: `p` is a valid, initialised `struct pci_driver` that stays pinned until
        // `unregister`.
        to_result(unsafe {
            bindings::__pci_register_driver(p, module.as_ptr(), name.as_char_ptr())
        })
    }

    unsafe fn unregister(pdrv: &Opaque<Self::DriverType>) {
        // SAFETY: By the safety requirements `pdrv` is registered.
        unsafe { bindings::pci_unregister_driver(pdrv.get()) }
    }
}

impl<T: Driver> Adapter<T> {
    const ERR_HANDLERS: bindings::pci_error_handlers = bindings::pci_error_handlers {
        error_detected: Some(Self::error_detected_callback),
        reset_prepare: Some(Self::reset_prepare_callback),
        reset_done: Some(Self::reset_done_callback),
        ..pin_init::zeroed()
    };

    /// Calls `f` with the bound device and its data, from remove or an error handler.
    ///
    /// # Safety
    ///
    /// `pdev` must be a valid `struct pci_dev` bound to this driver, with its device lock
    /// held, for the duration of the call (what the PCI core guarantees to `remove` and to
    /// the `pci_error_handlers` callbacks).
    unsafe fn with_bound<R>(
        pdev: *mut bindings::pci_dev,
        f: impl FnOnce(&pci::Device<device::Core<'_>>, Pin<&T::Data>) -> R,
    ) -> R {
        // SAFETY: By the safety requirements `pdev` is valid for this call.
        let pdev = unsafe { &*pdev.cast::<pci::Device<device::CoreInternal<'_>>>() };
        // SAFETY: The device is bound to this driver, so probe stored a `BoundData<T::Data>`.
        let data = unsafe { pdev.as_ref().drvdata_borrow::<BoundData<T::Data>>() }.data();
        // SAFETY: Same device, same layout (see `probe_callback`); valid for this call.
        let core = unsafe { &*core::ptr::from_ref(pdev).cast::<pci::Device<device::Core<'_>>>() };
        f(core, data)
    }

    extern "C" fn reset_prepare_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: The PCI core calls `reset_prepare` with a valid `struct pci_dev` bound to
        // this driver, under its device lock (`pci_dev_save_and_disable`, whose callers
        // hold it).
        unsafe { Self::with_bound(pdev, T::reset_prepare) }
    }

    extern "C" fn reset_done_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: As `reset_prepare_callback` (`pci_dev_restore`).
        unsafe { Self::with_bound(pdev, T::reset_done) }
    }

    extern "C" fn error_detected_callback(
        pdev: *mut bindings::pci_dev,
        _state: bindings::pci_channel_state_t,
    ) -> bindings::pci_ers_result_t {
        // SAFETY: Error recovery calls this with a valid `struct pci_dev` bound to this
        // driver, under its device lock (`report_error_detected`), for the duration of the
        // call.
        unsafe { Self::with_bound(pdev, T::error_detected) }.to_raw()
    }

    extern "C" fn probe_callback(
        pdev: *mut bindings::pci_dev,
        _id: *const bindings::pci_device_id,
    ) -> c_int {
        // SAFETY: The PCI core calls probe with a valid `struct pci_dev`.
        //
        // INVARIANT: `pdev` is valid for the duration of `probe_callback()`.
        let pdev = unsafe { &*pdev.cast::<pci::Device<device::CoreInternal<'_>>>() };
        from_result(|| {
            // SAFETY: Same device, same layout: `CoreInternal` only adds the right to set the
            // driver data to `Core`, and `pdev` is valid for this call.
            let core =
                unsafe { &*core::ptr::from_ref(pdev).cast::<pci::Device<device::Core<'_>>>() };
            // (The driver's initializer runs, and takes its `BoundFunction`, only once the
            // data is allocated: a failed allocation drops an unused binding.)
            //
            // SAFETY: The binding goes into the driver data, where only the driver core drops
            // it: in the unbind (`post_unbind_rust`, before `devres_release_all` and
            // `device_set_driver(dev, NULL)`), or at once if the initializer fails. (The PCI
            // core has cleared `pci_dev->driver` by then: no error handler runs meanwhile.)
            let binding = unsafe { Binding::new(core) }?;
            pdev.as_ref().set_drvdata(try_pin_init!(BoundData {
                data <- T::probe(core, binding.function()),
                binding,
            }))?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: The PCI core calls remove with a valid `struct pci_dev` bound to this
        // driver (remove only follows a successful probe), under its device lock
        // (`device_release_driver_internal`), for the duration of the call.
        unsafe { Self::with_bound(pdev, T::unbind) }
    }
}

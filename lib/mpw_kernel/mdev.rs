// SPDX-License-Identifier: GPL-2.0

//! Mediated devices: mdev drivers and mdev parents.
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h).
//!
//! An mdev *parent* is a device (here: a VF) that offers mdev *types* in sysfs
//! (`mdev_supported_types/<type>/create`). Writing a UUID there creates an mdev on the mdev bus
//! and binds it synchronously to the parent's mdev *driver*, whose [`Driver::probe`] runs
//! inside that sysfs write. `remove` (or unregistering the parent) runs [`Driver::remove`].

use crate::bindings;
use core::{
    marker::PhantomData,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
use kernel::{
    device,
    error::{
        from_result,
        to_result, //
    },
    prelude::*,
    sync::aref::ARef,
    types::{
        ForeignOwnable,
        Opaque, //
    },
    ThisModule, //
};

/// A mediated device (`struct mdev_device`).
///
/// # Invariants
///
/// `self.0` is a valid `struct mdev_device` created by the mdev core.
#[repr(transparent)]
pub struct Device(Opaque<bindings::mdev_device>);

impl Device {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct mdev_device` that outlives `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of `struct mdev_device`; the caller
        // guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *mut bindings::mdev_device {
        self.0.get()
    }

    /// Returns the generic device of this mdev (named after its UUID).
    pub fn as_dev(&self) -> &device::Device {
        // SAFETY: By the type invariant `self.as_raw()` is valid; `dev` is its embedded
        // `struct device`, which lives as long as `self`.
        unsafe { device::Device::from_raw(&raw mut (*self.as_raw()).dev) }
    }

    /// Returns the raw pointer to the `struct mdev_parent` this mdev was created on.
    fn parent_raw(&self) -> *mut bindings::mdev_parent {
        // SAFETY: By the type invariant `self.as_raw()` is valid; the mdev core sets `type` at
        // creation and `type->parent` at parent registration, and both outlive the mdev.
        unsafe { (*(*self.as_raw()).type_).parent }
    }
}

/// Description of one mdev type a parent offers.
#[derive(Clone, Copy)]
pub struct TypeInfo {
    /// The type's sysfs name; the directory is `<parent driver>-<sysfs_name>`.
    pub sysfs_name: &'static CStr,
    /// The human-readable `name` attribute.
    pub pretty_name: &'static CStr,
    /// The `description` attribute.
    pub description: &'static CStr,
}

/// A `struct mdev_type` with what the library shows for it.
///
/// Every type registered with a [`DriverRegistration`] is the `ty` of one of these (only
/// [`Parent::new`] registers types).
#[repr(C)]
struct TypeStorage {
    ty: Opaque<bindings::mdev_type>,
    description: &'static CStr,
}

/// An mdev driver: what runs when an mdev is created on, or removed from, a parent.
pub trait Driver: Send + Sync + 'static {
    /// Per-mdev data, created by [`Driver::probe`] and handed back to [`Driver::remove`].
    type Data: Send + Sync;

    /// Per-parent data: given to [`Parent::new`], lent to [`Driver::probe`] of the parent's
    /// mdevs. It outlives them.
    type ParentData: Send + Sync;

    /// The `device_api` sysfs attribute of every type, e.g. `c"vfio-pci"`.
    const DEVICE_API: &'static CStr;

    /// How many mdevs one parent may have at a time (the mdev core counts them).
    const MAX_INSTANCES: u32;

    /// Called inside the sysfs `create` write on the parent whose data is `parent`; an error
    /// fails that write.
    fn probe(mdev: &Device, parent: &Self::ParentData) -> Result<Pin<KBox<Self::Data>>>;

    /// Called when the mdev is removed; takes the data back.
    fn remove(mdev: &Device, data: Pin<KBox<Self::Data>>);
}

/// The registration of an mdev driver, meant to live in a `static` of the driver's module.
///
/// # Invariants
///
/// Once [`DriverRegistration::register`] succeeded, `drv` is a registered `struct mdev_driver`
/// until [`DriverRegistration::unregister`].
pub struct DriverRegistration<T: Driver> {
    drv: Opaque<bindings::mdev_driver>,
    /// Set by the one `register` call that may write `drv`.
    claimed: AtomicBool,
    _t: PhantomData<T>,
}

// SAFETY: `drv` is written only by the `register` call that claimed it (an atomic flag makes
// that one call), before it is registered; afterwards only the mdev core touches it, under its
// own locking.
unsafe impl<T: Driver> Sync for DriverRegistration<T> {}

impl<T: Driver> Default for DriverRegistration<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Driver> DriverRegistration<T> {
    /// Creates an unregistered driver; usable in a `static` initializer.
    pub const fn new() -> Self {
        Self {
            drv: Opaque::zeroed(),
            claimed: AtomicBool::new(false),
            _t: PhantomData,
        }
    }

    /// Registers the driver on the mdev bus; dropping the guard unregisters it. A
    /// registration is used once: a second call fails with `EBUSY`.
    pub fn register(
        &'static self,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result<DriverGuard<T>> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let drv = self.drv.get();
        // SAFETY: `drv` is valid static memory, not yet registered, and this call claimed it,
        // so nothing else reads or writes it.
        unsafe {
            (*drv).device_api = T::DEVICE_API.as_char_ptr();
            (*drv).max_instances = T::MAX_INSTANCES;
            (*drv).probe = Some(Self::probe_callback);
            (*drv).remove = Some(Self::remove_callback);
            (*drv).show_description = Some(Self::show_description_callback);
            (*drv).driver.name = name.as_char_ptr();
            (*drv).driver.owner = module.as_ptr();
        }
        // SAFETY: `drv` is a fully initialised `struct mdev_driver` in static memory.
        to_result(unsafe { bindings::mdev_register_driver(drv) })?;
        // INVARIANT: Registered just above.
        Ok(DriverGuard(self))
    }

    pub(crate) fn as_raw(&'static self) -> *mut bindings::mdev_driver {
        self.drv.get()
    }

    extern "C" fn probe_callback(mdev: *mut bindings::mdev_device) -> c_int {
        // SAFETY: The mdev core calls probe with a valid mdev that outlives the call.
        let dev = unsafe { Device::from_raw(mdev) };
        // SAFETY: Only `Parent::<T::ParentData>::new` registers parents with this driver.
        let parent = unsafe { Parent::<T::ParentData>::of(dev) };
        from_result(|| {
            let data = T::probe(dev, &parent.data)?;
            let ptr = data.into_foreign();
            // SAFETY: `dev.as_dev()` is a valid device; its driver data is ours while bound.
            unsafe { bindings::dev_set_drvdata(dev.as_dev().as_raw_mut(), ptr) };
            Ok(0)
        })
    }

    extern "C" fn show_description_callback(
        mtype: *mut bindings::mdev_type,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: Every type of this driver is the `ty` of a live `TypeStorage` (see its
        // documentation); the type outlives this sysfs read.
        let storage = unsafe {
            &*kernel::container_of!(mtype.cast::<Opaque<bindings::mdev_type>>(), TypeStorage, ty)
        };
        let text = storage.description.to_bytes();
        // sysfs gives a page; leave room for the newline.
        let n = text.len().min(bindings::PAGE_SIZE - 1);
        // SAFETY: `buf` is a sysfs buffer of `PAGE_SIZE` bytes; `n + 1 <= PAGE_SIZE`.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = b'\n' as c_char;
        }
        (n + 1) as isize
    }

    extern "C" fn remove_callback(mdev: *mut bindings::mdev_device) {
        // SAFETY: The mdev core calls remove with a valid mdev that outlives the call.
        let dev = unsafe { Device::from_raw(mdev) };
        // SAFETY: `dev.as_dev()` is a valid device.
        let ptr = unsafe { bindings::dev_get_drvdata(dev.as_dev().as_raw_mut()) };
        if ptr.is_null() {
            return;
        }
        // SAFETY: `probe_callback` stored a `Pin<KBox<T::Data>>` with `into_foreign`, and
        // remove runs once per successful probe.
        let data = unsafe { Pin::<KBox<T::Data>>::from_foreign(ptr) };
        // SAFETY: `dev.as_dev()` is a valid device.
        unsafe { bindings::dev_set_drvdata(dev.as_dev().as_raw_mut(), core::ptr::null_mut()) };
        T::remove(dev, data);
    }
}

/// A registered mdev driver; dropping it unregisters the driver.
///
/// Drop it only after every parent using the driver is gone (module exit order).
///
/// # Invariants
///
/// `self.0` is registered.
pub struct DriverGuard<T: Driver>(&'static DriverRegistration<T>);

impl<T: Driver> Drop for DriverGuard<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the driver is registered.
        unsafe { bindings::mdev_unregister_driver(self.0.drv.get()) }
    }
}

/// Raw device pointers for the types of this crate, which hold `&device::Device`.
pub(crate) trait AsRawDevice {
    /// Returns the `struct device` pointer.
    fn as_raw_mut(&self) -> *mut bindings::device;
}

impl<Ctx: device::DeviceContext> AsRawDevice for device::Device<Ctx> {
    fn as_raw_mut(&self) -> *mut bindings::device {
        // CAST: `device::Device` is a transparent wrapper of `Opaque<struct device>` (its
        // `as_raw` is private to the kernel crate).
        core::ptr::from_ref(self)
            .cast::<bindings::device>()
            .cast_mut()
    }
}

/// An mdev parent: a device registered with the mdev core with a set of types, and the
/// data `P` its mdev driver's probe gets for it.
///
/// # Invariants
///
/// `parent` is registered with `mdev_register_parent` for the whole life of `self`; `types`
/// and `type_ptrs` are not modified while it is. `data` outlives the registration.
#[pin_data(PinnedDrop)]
pub struct Parent<P> {
    #[pin]
    parent: Opaque<bindings::mdev_parent>,
    types: KVec<KBox<TypeStorage>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    /// The parent device, kept alive while it is registered.
    dev: ARef<device::Device>,
    data: P,
}

// SAFETY: The raw pointers point into `types`, owned by `self`; the mdev core synchronises
// its own use of the registration; `P` is `Send`.
unsafe impl<P: Send> Send for Parent<P> {}
// SAFETY: See above; `&Parent` gives no access to the pointers, only to `&P`.
unsafe impl<P: Sync> Sync for Parent<P> {}

impl<P: Send + Sync> Parent<P> {
    /// Registers `dev` as an mdev parent for `driver` with `types`; the driver's probe gets
    /// `data` for every mdev created on it.
    ///
    /// The parent holds a reference on `dev`. The mdev core expects `dev` to stay bound to
    /// its driver while it is a parent, which holds when the parent lives in that driver's
    /// device data and is dropped by its remove (as the library's PCI driver does).
    pub fn new<T: Driver<ParentData = P>>(
        dev: &device::Device<device::Bound>,
        driver: &'static DriverRegistration<T>,
        types: &'static [TypeInfo],
        data: P,
    ) -> impl PinInit<Self, Error> {
        let raw_dev = dev.as_raw_mut();
        let dev: ARef<device::Device> = dev.into();
        pin_init::pin_init_scope(move || {
            let mut v_types = KVec::with_capacity(types.len(), GFP_KERNEL)?;
            let mut v_ptrs = KVec::with_capacity(types.len(), GFP_KERNEL)?;
            for t in types {
                let storage = TypeStorage {
                    ty: Opaque::zeroed(),
                    description: t.description,
                };
                let ty = KBox::new(storage, GFP_KERNEL)?;
                // SAFETY: `ty` is a freshly allocated, zeroed `struct mdev_type` we own.
                unsafe {
                    (*ty.ty.get()).sysfs_name = t.sysfs_name.as_char_ptr();
                    (*ty.ty.get()).pretty_name = t.pretty_name.as_char_ptr();
                }
                v_ptrs.push(ty.ty.get(), GFP_KERNEL)?;
                v_types.push(ty, GFP_KERNEL)?;
            }
            Ok(try_pin_init!(Self {
                types: v_types,
                type_ptrs: v_ptrs,
                dev,
                data,
                parent <- Opaque::try_ffi_init(|p: *mut bindings::mdev_parent| {
                    let n = u32::try_from(type_ptrs.len()).map_err(|_| EINVAL)?;
                    // INVARIANT: On success the parent is registered with pointers into the
                    // vectors just stored in `self`, which are never modified afterwards.
                    // SAFETY: `p` is valid for writes and pinned; `raw_dev` is a bound device;
                    // `driver` is registered (module init registers it before any PCI probe);
                    // `type_ptrs` holds `n` valid `struct mdev_type` pointers owned by `self`.
                    to_result(unsafe {
                        bindings::mdev_register_parent(
                            p,
                            raw_dev,
                            driver.as_raw(),
                            type_ptrs.as_ptr().cast_mut(),
                            n,
                        )
                    })
                }),
            }))
        })
    }

    /// Returns the [`Parent`] an mdev was created on.
    ///
    /// # Safety
    ///
    /// `mdev` must have been created on a parent registered through `Parent::<P>::new` (true
    /// for every mdev of a driver `T`: only `Parent::<T::ParentData>::new` registers parents
    /// with it).
    unsafe fn of(mdev: &Device) -> &Self {
        let raw = mdev.parent_raw().cast::<Opaque<bindings::mdev_parent>>();
        // SAFETY: By the safety requirements `raw` is the `parent` field of a live `Parent`,
        // which outlives its mdevs (dropping it unregisters them first).
        unsafe { &*kernel::container_of!(raw, Self, parent) }
    }
}

#[pinned_drop]
impl<P> PinnedDrop for Parent<P> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the parent is registered. This removes every mdev of
        // the parent first (waiting for their users to close them).
        unsafe { bindings::mdev_unregister_parent(self.parent.get()) };
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A PCI VF wrapped as an mdev: the generic logic between the abstractions and a vendor.
//!
//! A vendor driver implements [`VfDriver`] and declares its module with
//! [`module_vf_driver!`](crate::module_vf_driver). The library then:
//!
//! 1. binds to the vendor's VFs (by ID, or by `driver_override`) with a PCI driver that owns
//!    their DMA (`driver_managed_dma`), refusing what vfio-pci refuses (bridges, PFs with VFs
//!    enabled), and registers each bound VF as an mdev parent with the vendor's mdev types,
//!    one instance per VF;
//! 2. on `echo $UUID > .../create`, allocates and registers a VFIO device for the mdev;
//! 3. serves the VFIO device as vfio-pci serves a function: device and region info, a
//!    virtual config space with vfio-pci's permission tables ([`crate::config`]), BAR
//!    read/write and fault-based mmap that follow the function's state (vfio-pci's memory
//!    lock: nothing reaches the function while it is reset, in D3, not decoding or removed),
//!    interrupts, resets and AER error notification;
//! 4. gives the VF's DMA to userspace: binding the VFIO device to an iommufd context binds
//!    the VF itself to it and attaches it to the user's IOAS (see [`crate::iommufd`]). An
//!    open through the legacy type1 container, where no such binding happens, is refused.

use crate::{
    bar::{
        self,
        Area, //
    },
    bindings,
    bound_function::BoundFunction,
    config::{
        Action,
        Bar,
        BarKind,
        CapKind,
        Function,
        VirtConfig, //
    },
    eventfd::EventFd,
    interrupts::{
        self,
        Interrupts, //
        IrqCounts,
        UnmaskFd,
    },
    iommufd,
    mdev,
    pci_driver,
    pci_io::{
        self,
        BarPage,
        IoMap, //
    },
    user_dbg,
    user_warn,
    vendor::{
        ConfigEdit,
        Irq,
        Trap,
        VendorRegion,
        VirtualBar, //
    },
    vfio,
    virqfd::Virqfd, //
};
use core::marker::PhantomData;
use kernel::{
    c_str, device,
    mm::virt::{
        flags as vm_flags,
        VmaNew, //
    },
    pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        LockClassKey,
        Mutex,
        MutexGuard, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
};

/// Defines a lock class of this library as a non-generic function: a `new_mutex!` in generic
/// code would give each vendor module's instance its own copy of the class name for one
/// static key, which lockdep reports ("found a different class with the same key").
macro_rules! lib_lock_class {
    ($($fn:ident: $name:literal),* $(,)?) => {
        $(
            #[inline(never)]
            fn $fn() -> (&'static CStr, Pin<&'static LockClassKey>) {
                (c_str!($name), kernel::static_lock_class!())
            }
        )*
    };
}

lib_lock_class! {
    class_err: "VfShared::err",
    class_open_dev: "VfShared::open_dev",
    class_parent: "VfParent::parent",
    class_config: "VfDevice::config",
    class_mem: "VfDevice::mem",
    class_gate: "VfDevice::gate",
    class_bar_maps: "VfDevice::bar_maps",
    class_open: "VfDevice::open",
    class_dma: "VfDevice::dma",
    class_irqs: "VfDevice::irqs",
    class_intx_unmask: "VfDevice::intx_unmask",
}

/// `Mutex::new` with one of the classes above.
fn lib_mutex<U>(
    t: impl PinInit<U>,
    class: fn() -> (&'static CStr, Pin<&'static LockClassKey>),
) -> impl PinInit<Mutex<U>> {
    let (name, key) = class();
    Mutex::new(t, name, key)
}

/// The region offset encoding every vfio-pci device uses: region index in bits 40 and up.
pub const REGION_SHIFT: u32 = 40;
const REGION_OFFSET_MASK: u64 = (1u64 << REGION_SHIFT) - 1;
/// The file range of the BAR regions (indexes 0 to 5), which mappings can cover.
const BARS_FILE_RANGE: u64 = 6 << REGION_SHIFT;

/// A vendor's description of the VFs it wraps. See the module documentation.
pub trait VfDriver: Send + Sync + Sized + 'static {
    /// The driver name: of the VF PCI driver (what `driver_override` names) and of the mdev
    /// driver. The mdev type directories are `<NAME>-<type sysfs name>`.
    const NAME: &'static CStr;

    /// The VF IDs to bind to; `OVERRIDE_ONLY` binds only through `driver_override`.
    const ID_TABLE: pci_driver::IdTable;

    /// The mdev types every wrapped VF offers.
    const TYPES: &'static [mdev::TypeInfo];

    // --- What differs from a plain VF: every hook below is optional ------------------

    /// The vendor's state of one mdev: made when the mdev is created, kept across opens,
    /// handed to every hook (under the device's memory lock: hooks never run at once).
    /// `()` for none.
    type State: Default + Send + Unpin;

    /// The BAR ranges the vendor traps: never mapped to userspace, their accesses go to
    /// [`VfDriver::trap_read`] and [`VfDriver::trap_write`].
    const TRAPS: &'static [Trap] = &[];

    /// BARs the function does not have, which the vendor emulates: every access goes to
    /// [`VfDriver::trap_read`] and [`VfDriver::trap_write`].
    const VIRTUAL_BARS: &'static [VirtualBar] = &[];

    /// Device-specific VFIO regions, after the PCI ones: their accesses go to
    /// [`VfDriver::region_read`] and [`VfDriver::region_write`].
    const REGIONS: &'static [VendorRegion] = &[];

    /// The device presents an interrupt pin (INTA), an emulated line the vendor drives with
    /// [`VfAccess::set_intx`]; the INTx index then has one vector, with vfio-pci's semantics.
    const INTX: bool = false;

    /// Edits the config space userspace sees (IDs, fields, capabilities), once, when an mdev
    /// is created.
    fn edit_config(_config: &mut ConfigEdit<'_>) -> Result {
        Ok(())
    }

    /// The device is being opened: the function was reset and is enabled. An error fails
    /// the open.
    fn open(_vf: &mut VfAccess<'_, Self>) -> Result {
        Ok(())
    }

    /// The device is being closed: the function still decodes; it is reset after this.
    fn close(_vf: &mut VfAccess<'_, Self>) {}

    /// The function was reset for the user (`VFIO_DEVICE_RESET`, or an FLR the user started
    /// through config space).
    fn reset_done(_vf: &mut VfAccess<'_, Self>) {}

    /// A read of `width` (1, 2, 4 or 8) bytes at `off` of BAR `bar` that touches one of
    /// [`VfDriver::TRAPS`]. The default reads the function.
    fn trap_read(vf: &mut VfAccess<'_, Self>, bar: usize, off: u64, width: u16) -> Result<u64> {
        vf.read(bar, off, width)
    }

    /// A write of `width` bytes of `val` at `off` of BAR `bar` that touches one of
    /// [`VfDriver::TRAPS`]. The default writes the function.
    fn trap_write(
        vf: &mut VfAccess<'_, Self>,
        bar: usize,
        off: u64,
        width: u16,
        val: u64,
    ) -> Result {
        vf.write(bar, off, width, val)
    }

    /// A read of `buf.len()` bytes (at most a page) at `off` of the `region`th of
    /// [`VfDriver::REGIONS`]; the library checked that it lies inside the region.
    fn region_read(
        _vf: &mut VfAccess<'_, Self>,
        _region: usize,
        _off: u64,
        _buf: &mut [u8],
    ) -> Result {
        Err(EINVAL)
    }

    /// A write of `buf` (at most a page) at `off` of the `region`th of [`VfDriver::REGIONS`],
    /// a writable one; the library checked that it lies inside the region.
    fn region_write(
        _vf: &mut VfAccess<'_, Self>,
        _region: usize,
        _off: u64,
        _buf: &[u8],
    ) -> Result {
        Err(EINVAL)
    }
}

/// Where a vendor module keeps its mdev driver; implemented by
/// [`module_vf_driver!`](crate::module_vf_driver), not by hand.
#[doc(hidden)]
pub trait VfModule: VfDriver {
    /// The vendor module's (static) mdev driver registration.
    fn mdev_driver() -> &'static mdev::DriverRegistration<MdevDriver<Self>>;
}

/// What the PCI driver of a wrapped function and the VFIO device of its mdev share.
#[pin_data]
pub struct VfShared<T: VfDriver> {
    /// The VF; the PCI driver's unbind waits until this and its clones are gone.
    func: BoundFunction,
    /// The ERR eventfd of the open VFIO device (`VFIO_PCI_ERR_IRQ_INDEX`), signalled by
    /// AER error recovery.
    #[pin]
    err: Mutex<Option<EventFd>>,
    /// The VFIO device while it is open, for resets the PCI core announces (lock order:
    /// this, then the device's memory lock).
    #[pin]
    open_dev: Mutex<Option<ARef<vfio::Device<VfDevice<T>>>>>,
    /// Set while the VFIO device resets the function itself (holding its memory lock), so
    /// that the PCI core's announcement of that reset is not taken for someone else's.
    own_reset: Atomic<bool>,
}

impl<T: VfDriver> VfShared<T> {
    /// A reset of the function starts (`starting`) or ends, as the PCI core announces it
    /// under the function's device lock. If the open VFIO device did not ask for it, the
    /// user's mappings are revoked and BAR accesses fail (`EIO`, `SIGBUS`) until it is over;
    /// afterwards the vendor hears of it as of a reset the user asked for.
    fn foreign_reset(&self, starting: bool) {
        // The device's own resets take the device lock too, so the flag cannot belong to a
        // reset racing with this one: it is set if this announcement is of an own reset
        // (whose thread holds the memory lock: it must not be taken here).
        if self.own_reset.load(Relaxed) {
            return;
        }
        if let Some(dev) = self.open_dev.lock().as_ref() {
            dev.data().foreign_reset(dev, starting);
        }
    }
}

/// A registered mdev parent of a wrapped function.
type ParentBox<T> = Pin<KBox<mdev::Parent<Arc<VfShared<T>>>>>;

/// The state of a VF bound to a [`VfDriver`]: an mdev parent whose mdevs get the VF.
#[pin_data]
pub struct VfParent<T: VfDriver> {
    shared: Arc<VfShared<T>>,
    /// Taken (unregistering the parent, removing its mdevs and waiting for their users) in
    /// the PCI driver's remove, before the driver core clears the function's driver.
    #[pin]
    parent: Mutex<Option<ParentBox<T>>>,
    _t: PhantomData<T>,
}

/// The VF PCI driver of a [`VfDriver`].
pub struct VfPciDriver<T: VfDriver>(PhantomData<T>);

/// Refuses, with a message, what vfio-pci refuses to assign.
fn check_eligible(dev: &pci::Device<device::Core<'_>>) -> Result {
    let hdr = pci_io::header_type(dev);
    if hdr != 0 {
        dev_warn!(
            dev.as_ref(),
            "refusing to wrap a function with header type {:#x}: only normal functions \
             (type 0) can be given to userspace, not bridges\n",
            hdr
        );
        return Err(EINVAL);
    }
    let vfs = pci_io::num_vf(dev);
    if vfs > 0 {
        dev_warn!(
            dev.as_ref(),
            "refusing to wrap a PF with SR-IOV enabled ({} VFs): its VFs depend on it; \
             disable them first (sriov_numvfs = 0)\n",
            vfs
        );
        return Err(EBUSY);
    }
    Ok(())
}

impl<T: VfModule> pci_driver::Driver for VfPciDriver<T> {
    type Data = VfParent<T>;
    const ID_TABLE: pci_driver::IdTable = T::ID_TABLE;

    fn probe(
        dev: &pci::Device<device::Core<'_>>,
        func: BoundFunction,
    ) -> impl PinInit<Self::Data, Error> {
        pin_init::pin_init_scope(move || {
            check_eligible(dev)?;
            dev_info!(
                dev.as_ref(),
                "wrapping {} {:04x}:{:04x} as an mdev parent\n",
                if pci_io::is_virtfn(dev) {
                    "VF"
                } else {
                    "function"
                },
                dev.vendor_id().as_raw(),
                dev.device_id()
            );
            let shared = Arc::pin_init(
                try_pin_init!(VfShared {
                    func,
                    err <- lib_mutex(None, class_err),
                    open_dev <- lib_mutex(None, class_open_dev),
                    own_reset: Atomic::new(false),
                }),
                GFP_KERNEL,
            )?;
            let parent = KBox::pin_init(
                mdev::Parent::new(dev.as_ref(), T::mdev_driver(), T::TYPES, shared.clone()),
                GFP_KERNEL,
            )?;
            Ok(try_pin_init!(VfParent {
                shared,
                parent <- lib_mutex(Some(parent), class_parent),
                _t: PhantomData,
            }))
        })
    }

    fn unbind(dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        // Remove the mdevs now, waiting for their users (who are asked to close through the
        // REQ eventfd, and lose BAR access at once), while the function is still bound.
        let parent = data.parent.lock().take();
        drop(parent);
        dev_info!(dev.as_ref(), "unwrapped\n");
    }

    fn error_detected(
        dev: &pci::Device<device::Core<'_>>,
        data: Pin<&Self::Data>,
    ) -> pci_driver::ErsResult {
        // As vfio-pci: tell the user (a VMM injects the error into its guest) and let the
        // recovery go on.
        let told = match data.shared.err.lock().as_ref() {
            Some(e) => {
                e.signal();
                true
            }
            None => false,
        };
        dev_info!(
            dev.as_ref(),
            "AER: uncorrectable error, {}\n",
            if told {
                "signalled to userspace (ERR eventfd)"
            } else {
                "no ERR eventfd to signal"
            }
        );
        pci_driver::ErsResult::CanRecover
    }

    fn reset_prepare(_dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        data.shared.foreign_reset(true);
    }

    fn reset_done(_dev: &pci::Device<device::Core<'_>>, data: Pin<&Self::Data>) {
        data.shared.foreign_reset(false);
    }
}

/// Per-mdev state: the registered VFIO device.
pub struct MdevState<T: VfDriver> {
    _reg: vfio::Registration<VfDevice<T>>,
}

/// The mdev driver of a [`VfDriver`].
pub struct MdevDriver<T: VfDriver>(PhantomData<T>);

impl<T: VfDriver> mdev::Driver for MdevDriver<T> {
    type Data = MdevState<T>;
    type ParentData = Arc<VfShared<T>>;
    const DEVICE_API: &'static CStr = c_str!("vfio-pci");
    // One mdev per VF: the VF is the whole device.
    const MAX_INSTANCES: u32 = 1;

    fn probe(mdev: &mdev::Device, shared: &Arc<VfShared<T>>) -> Result<Pin<KBox<Self::Data>>> {
        let vdev = vfio::Device::new(mdev.as_dev(), VfDevice::<T>::new(shared.clone()))?;
        let reg = vfio::Registration::new(vdev)?;
        dev_info!(
            mdev.as_dev(),
            "created on {}\n",
            shared.func.pdev().as_ref().name()
        );
        Ok(KBox::pin(MdevState { _reg: reg }, GFP_KERNEL)?)
    }

    fn remove(mdev: &mdev::Device, data: Pin<KBox<Self::Data>>) {
        // Unregistering waits until userspace has closed the device.
        drop(data);
        dev_info!(mdev.as_dev(), "removed\n");
    }
}

/// The VF in the user's iommufd context.
struct UserDma {
    /// The kernel's access to the IOAS the VF is attached to, for the vendor
    /// ([`VfAccess::dma_read`]); attached only while the VF is attached to an IOAS (not a
    /// HWPT). (Dropped before `bound`.)
    access: Option<iommufd::Access>,
    /// The VF bound to the context.
    bound: iommufd::BoundDevice,
}

/// What exists while the device is open (in the order it is undone at close).
struct OpenState {
    /// The function's config space after the reset at open, put back at close.
    pristine: Option<pci_io::SavedState>,
    /// The function has a function-level reset (it worked at open).
    reset_works: bool,
    _enabled: pci_io::Enabled,
    _pm: pci_io::RuntimePm,
}

/// A BAR claimed for the user and mapped into the kernel, on first use.
struct BarMap {
    map: IoMap,
    _regions: pci_io::Regions,
}

/// Whether the function may be accessed through its BARs: vfio-pci's `memory_lock` and what
/// it protects. Held across every BAR access and change of the function's decoding (reset,
/// power state, memory enable, removal), and by every vendor hook.
///
/// Never taken under a user's `mmap_lock` (not in `mmap` or a fault; those take
/// [`VfDevice::gate`] and [`VfDevice::bar_maps`], both taken under this one): vendor hooks may
/// touch user memory under it (the user's IOVAs, [`VfAccess::dma_read`]), which takes the
/// `mmap_lock`.
struct MemState<S> {
    open: bool,
    /// Removal was requested: no BAR access ever again.
    revoked: bool,
    /// Not in D0 (userspace wrote PMCSR).
    low_power: bool,
    /// Someone else (the host, the PF's driver, a bus reset) is resetting the function.
    foreign_reset: bool,
    /// The virtual config space's memory enable ([`VirtConfig::memory_enabled`]), copied
    /// under this lock by whoever changes it (a config write, an open), so that a BAR access
    /// needs no config lock.
    memory_enabled: bool,
    pm_save: pci_io::PmSave,
    /// The BAR mappings holders of this lock used, copied from [`VfDevice::bar_maps`]: an
    /// access under this lock takes no other. Cleared with them, at close.
    maps: [Option<Arc<BarMap>>; 6],
    /// The vendor's state.
    vendor: S,
}

/// The VFIO device of a wrapped VF.
#[pin_data]
pub struct VfDevice<T: VfDriver> {
    /// The function's BARs, as the PCI core sized them at bind time, and the vendor's
    /// virtual ones.
    bars: [Bar; 6],
    /// Which of `bars` are the vendor's.
    virtual_bars: [bool; 6],
    /// The size of the config space ([`VirtConfig::size`], fixed at creation): read without
    /// the config lock.
    config_size: u16,
    #[pin]
    config: Mutex<VirtConfig>,
    #[pin]
    mem: Mutex<MemState<T::State>>,
    /// Whether a fault may map a page of a BAR: [`VfDevice::decoding`] as the last holder of
    /// the memory lock left it. Set false, with every user mapping zapped, before anything
    /// stops the function decoding. (Lock order: memory, then gate.)
    #[pin]
    gate: Mutex<bool>,
    /// The BARs claimed for the user and mapped into the kernel, on first use (at mmap, or at
    /// the first access); released at close. A leaf lock.
    #[pin]
    bar_maps: Mutex<[Option<Arc<BarMap>>; 6]>,
    #[pin]
    open: Mutex<Option<OpenState>>,
    /// The VF bound to the user's iommufd context, while the device is bound to one.
    #[pin]
    dma: Mutex<Option<UserDma>>,
    /// The vectors of each interrupt index.
    irq_counts: IrqCounts,
    /// The MSI-X table and PBA in each BAR (empty areas elsewhere).
    msix: [[Area; 2]; 6],
    #[pin]
    irqs: Mutex<Interrupts>,
    /// The INTx unmask eventfd. Its callback takes `irqs`: it is set up and torn down (which
    /// waits for the callback) with `irqs` released. (Lock order: intx_unmask, then irqs.)
    #[pin]
    intx_unmask: Mutex<Virqfd<vfio::Device<Self>>>,
    /// Last: it holds the VF's `BoundFunction`, for which the unbind waits, so as little as
    /// possible of this device's drop runs after.
    shared: Arc<VfShared<T>>,
    _t: PhantomData<T>,
}

/// A vendor hook's access to its device, under the device's memory lock: the vendor's
/// state, the function's BARs, the user's interrupts.
pub struct VfAccess<'a, T: VfDriver> {
    vf: &'a VfDevice<T>,
    dev: &'a device::Device,
    mem: &'a mut MemState<T::State>,
}

impl<T: VfDriver> VfAccess<'_, T> {
    /// The vendor's state of this mdev.
    pub fn state(&mut self) -> &mut T::State {
        &mut self.mem.vendor
    }

    /// The mdev's parent device (the VF), to name in messages.
    pub fn device(&self) -> &device::Device {
        self.dev
    }

    /// Reads `width` (1, 2, 4 or 8) bytes at `off` of BAR `bar` of the function. `EIO` while
    /// it cannot decode (in low power, memory disabled, removed), `EINVAL` out of the BAR.
    pub fn read(&mut self, bar: usize, off: u64, width: u16) -> Result<u64> {
        if bar >= self.vf.bars.len() || !self.vf.decoding(self.mem) {
            return Err(EIO);
        }
        self.vf.with_bar(self.mem, bar, |map| map.read(off, width))
    }

    /// Writes `width` bytes of `val` at `off` of BAR `bar` of the function; errors as
    /// [`VfAccess::read`].
    pub fn write(&mut self, bar: usize, off: u64, width: u16, val: u64) -> Result {
        if bar >= self.vf.bars.len() || !self.vf.decoding(self.mem) {
            return Err(EIO);
        }
        self.vf
            .with_bar(self.mem, bar, |map| map.write(off, width, val))
    }

    /// Reads `buf.len()` bytes at the I/O virtual address `iova` of the user's DMA space (the
    /// IOAS the VF is attached to): what the device would read there by DMA. `ENOENT` when
    /// the VF is not attached to an IOAS or the range is not all mapped; `EFAULT` when the
    /// user's memory is gone.
    pub fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result {
        self.with_user_dma(|access| access.read(iova, buf))
    }

    /// Writes `buf` at the I/O virtual address `iova` of the user's DMA space, as the device
    /// would by DMA; errors as [`VfAccess::dma_read`], and `EPERM` for memory the user mapped
    /// read-only.
    pub fn dma_write(&mut self, iova: u64, buf: &[u8]) -> Result {
        self.with_user_dma(|access| access.write(iova, buf))
    }

    /// Calls `f` with the kernel's access to the user's IOAS; `ENOENT` without one.
    fn with_user_dma(&self, f: impl FnOnce(&iommufd::Access) -> Result) -> Result {
        match &*self.vf.dma.lock() {
            Some(UserDma {
                access: Some(access),
                ..
            }) => f(access),
            _ => Err(ENOENT),
        }
    }

    /// Raises `irq` to the user (signals its eventfd). Returns whether the user had an
    /// eventfd on that vector (enabled, of that kind).
    pub fn raise(&self, irq: Irq) -> bool {
        self.vf.irqs.lock().raise(irq)
    }

    /// Sets the level of the emulated INTx line ([`VfDriver::INTX`]; nothing otherwise):
    /// asserting it signals the user's INTx eventfd unless the line is masked or the user
    /// set INTx-disable, and masks it until the user unmasks it. Returns whether it signalled.
    pub fn set_intx(&mut self, asserted: bool) -> bool {
        if !T::INTX {
            return false;
        }
        let disabled = {
            let mut config = self.vf.config.lock();
            config.set_intx_status(asserted);
            config.intx_disabled()
        };
        self.vf.irqs.lock().intx.set_level(asserted, disabled)
    }
}

/// The BARs of `pdev` as the PCI core sized them (for a VF: from the PF's SR-IOV capability).
fn vf_bars(pdev: &pci::Device) -> [Bar; 6] {
    let mut bars = [Bar::ABSENT; 6];
    for (i, bar) in bars.iter_mut().enumerate() {
        let (start, end, flags) = pci_io::resource(pdev, i);
        let size = if end > start { end - start + 1 } else { 0 };
        let has = |f: u32| flags & f as usize != 0;
        let prefetch = has(bindings::IORESOURCE_PREFETCH);
        let kind = if size == 0 {
            BarKind::Absent
        } else if has(bindings::IORESOURCE_IO) {
            BarKind::Io
        } else if has(bindings::IORESOURCE_MEM_64) {
            BarKind::Mem64 { prefetch }
        } else {
            BarKind::Mem32 { prefetch }
        };
        *bar = Bar { kind, size };
    }
    bars
}

/// The mask of the BARs of a file offset range's region, or `None` for another region.
fn bar_index(pos: u64) -> Option<usize> {
    match pos >> REGION_SHIFT {
        i @ 0..=5 => Some(i as usize),
        _ => None,
    }
}

impl<T: VfDriver> VfDevice<T> {
    /// The VF, bound while this device exists.
    fn func(&self) -> &BoundFunction {
        &self.shared.func
    }

    fn new(shared: Arc<VfShared<T>>) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(move || {
            let pdev = shared.func.dev();
            let mut bars = vf_bars(pdev);
            let virtual_bars = VirtualBar::apply(T::VIRTUAL_BARS, &mut bars).inspect_err(|_| {
                dev_warn!(
                    pdev.as_ref(),
                    "{}: a virtual BAR is invalid or the function has that BAR\n",
                    T::NAME
                )
            })?;
            let function = Function {
                vendor: pdev.vendor_id().as_raw(),
                device: pdev.device_id(),
                no_command_memory: pci_io::no_command_memory(pdev),
                bars,
            };
            let snapshot = pci_io::config_snapshot(pdev)?;
            let mut config = VirtConfig::new(&function, &snapshot)?;
            T::edit_config(&mut ConfigEdit(&mut config)).inspect_err(|e| {
                dev_warn!(
                    pdev.as_ref(),
                    "{}: editing the config space failed: {:?}\n",
                    T::NAME,
                    e
                )
            })?;
            let pcie = config
                .find(CapKind::Std(bindings::PCI_CAP_ID_EXP as u8))
                .is_some();
            let mut irq_counts = IrqCounts::of(pdev, pcie);
            if T::INTX {
                config.present_intx();
                irq_counts = irq_counts.with_intx();
            }
            let msix = core::array::from_fn(|bar| pci_io::msix_ranges(pdev, bar));
            let config_size = config.size();
            Ok(try_pin_init!(Self {
                shared,
                bars,
                virtual_bars,
                config_size,
                config <- lib_mutex(config, class_config),
                mem <- lib_mutex(MemState {
                    open: false,
                    revoked: false,
                    low_power: false,
                    foreign_reset: false,
                    memory_enabled: false,
                    pm_save: pci_io::PmSave::default(),
                    maps: [const { None }; 6],
                    vendor: T::State::default(),
                }, class_mem),
                gate <- lib_mutex(false, class_gate),
                bar_maps <- lib_mutex([const { None }; 6], class_bar_maps),
                open <- lib_mutex(None, class_open),
                dma <- lib_mutex(None, class_dma),
                irq_counts,
                msix,
                irqs <- lib_mutex(Interrupts::default(), class_irqs),
                intx_unmask <- lib_mutex(Virqfd::new(), class_intx_unmask),
                _t: PhantomData,
            }))
        })
    }

    /// Whether the function may be accessed through its BARs now; `mem` is the held memory
    /// lock.
    fn decoding(&self, mem: &MemState<T::State>) -> bool {
        mem.open && !mem.revoked && !mem.low_power && !mem.foreign_reset && mem.memory_enabled
    }

    /// The kernel mapping of BAR `bar`, claiming and mapping the BAR on first use.
    fn bar_map(&self, bar: usize) -> Result<Arc<BarMap>> {
        if self.virtual_bars.get(bar).copied().unwrap_or(true) {
            return Err(EINVAL);
        }
        let mut maps = self.bar_maps.lock();
        let slot = maps.get_mut(bar).ok_or(EINVAL)?;
        if slot.is_none() {
            let regions = pci_io::Regions::request(self.func(), 1 << bar).inspect_err(|e| {
                user_warn!(
                    self.func().dev().as_ref(),
                    "cannot claim BAR{} for userspace: {:?} (in use by another driver?)\n",
                    bar,
                    e
                )
            })?;
            let map = IoMap::new(self.func(), bar as u32)?;
            *slot = Some(Arc::new(
                BarMap {
                    map,
                    _regions: regions,
                },
                GFP_KERNEL,
            )?);
        }
        slot.clone().ok_or(EINVAL)
    }

    /// Calls `f` with the kernel mapping of BAR `bar`, under the memory lock (`mem`): its
    /// copy there, so that an access takes no other lock, else [`VfDevice::bar_map`]'s, copied
    /// there for the next one.
    fn with_bar<R>(
        &self,
        mem: &mut MemState<T::State>,
        bar: usize,
        f: impl FnOnce(&IoMap) -> Result<R>,
    ) -> Result<R> {
        let slot = mem.maps.get_mut(bar).ok_or(EINVAL)?;
        if slot.is_none() {
            *slot = Some(self.bar_map(bar)?);
        }
        f(&slot.as_ref().ok_or(EINVAL)?.map)
    }

    /// Resets the function (`pci_try_reset_function`) for this device; the memory lock must
    /// be held (`mem`), so nothing reaches the function meanwhile. The gate is held closed
    /// across the reset, the user's mappings revoked: a fault meanwhile waits for the reset to
    /// end, and maps again if the function then decodes (as vfio-pci's faults wait on its
    /// `memory_lock`).
    fn reset_function(&self, dev: &vfio::Device<Self>, mem: &MemState<T::State>) -> Result {
        let mut gate = Self::close_gate(dev);
        self.shared.own_reset.store(true, Relaxed);
        let r = pci_io::try_reset(self.func().dev());
        self.shared.own_reset.store(false, Relaxed);
        *gate = self.decoding(mem);
        r
    }

    /// A reset of the function this device did not ask for starts or ends (see
    /// [`VfShared::foreign_reset`]).
    fn foreign_reset(&self, dev: &vfio::Device<Self>, starting: bool) {
        let mut mem = self.mem.lock();
        mem.foreign_reset = starting;
        if starting {
            Self::zap(dev, &mem);
            dev_info!(
                dev.parent(),
                "the function is being reset by the host: BAR access revoked until it is over\n"
            );
        } else {
            T::reset_done(&mut self.access(dev.parent(), &mut mem));
            Self::update_gate(dev, &mem);
        }
    }

    /// Closes the gate and revokes every user mapping of the BARs: a fault maps nothing until
    /// [`VfDevice::update_gate`] opens it again. The memory lock must be held (`_mem`).
    fn zap(dev: &vfio::Device<Self>, _mem: &MemState<T::State>) {
        drop(Self::close_gate(dev));
    }

    /// Closes the gate and revokes every user mapping of the BARs, returning the gate still
    /// locked: faults wait until the caller releases it.
    fn close_gate(dev: &vfio::Device<Self>) -> MutexGuard<'_, bool> {
        let mut gate = dev.data().gate.lock();
        *gate = false;
        dev.zap(0, BARS_FILE_RANGE);
        gate
    }

    /// Sets the gate to whether the function decodes now (revoking every user mapping if it
    /// does not); called by a holder of the memory lock (`mem`) that may have changed it,
    /// before releasing the lock.
    fn update_gate(dev: &vfio::Device<Self>, mem: &MemState<T::State>) {
        let this = dev.data();
        if this.decoding(mem) {
            *this.gate.lock() = true;
        } else {
            Self::zap(dev, mem);
        }
    }

    /// The parts of BAR `bar` userspace may mmap: the whole BAR (MSI-X table included, as
    /// vfio-pci allows) but the pages of the vendor's traps, for memory BARs of at least a
    /// page.
    fn mappable(&self, bar: usize) -> Result<KVec<Area>> {
        let b = self.bars[bar];
        if !b.is_mem() || self.virtual_bars[bar] {
            return Ok(KVec::new());
        }
        let mut trapped = KVec::new();
        for t in T::TRAPS.iter().filter(|t| usize::from(t.bar) == bar) {
            trapped.push(
                Area {
                    offset: t.offset,
                    size: t.size,
                },
                GFP_KERNEL,
            )?;
        }
        bar::mappable_areas(b.size, &trapped, bindings::PAGE_SIZE as u64)
    }

    /// The vendor's view of the device, under the held memory lock `mem`.
    fn access<'a>(
        &'a self,
        dev: &'a device::Device,
        mem: &'a mut MemState<T::State>,
    ) -> VfAccess<'a, T> {
        VfAccess { vf: self, dev, mem }
    }

    /// Reads `len` bytes of config space at `off` through the virtual config space.
    fn config_read(&self, off: u16, len: u16) -> Result<u32> {
        {
            let config = self.config.lock();
            if config.hw_mask(off, len) == 0 {
                // All virtual (the IDs, BARs, capability headers): one lock.
                return config.read(off, len, 0);
            }
        }
        // Not under the config lock: a user config access waits while the PCI core has config
        // access blocked (a reset in progress), and a reset holds the memory lock, which is
        // taken before the config lock.
        let hw = pci_io::user_read_config(self.func().dev(), off.into(), len)?;
        self.config.lock().read(off, len, hw)
    }

    /// Writes `len` bytes of config space at `off` as the permission tables say, and carries
    /// out what the write asks for through the kernel.
    fn config_write(&self, dev: &vfio::Device<Self>, off: u16, len: u16, val: u32) -> Result {
        // The memory lock first: a write may change whether the function decodes. The
        // virtual copy now says whether it does (memory enable), so a function that stops
        // decoding loses its mappings before the hardware hears of it.
        let plan = {
            let mut mem = self.mem.lock();
            let plan = {
                let mut config = self.config.lock();
                let plan = config.write(off, len, val)?;
                mem.memory_enabled = config.memory_enabled();
                plan
            };
            // Memory enable cleared: no more mappings; set: faults may map again. (A power
            // change or a reset the write asks for closes the gate itself, below.)
            Self::update_gate(dev, &mem);
            plan
        };
        // Not under the memory lock: a user config access waits while the PCI core has
        // config access blocked (a reset in progress), and a reset the PCI core announces
        // takes the memory lock (`foreign_reset`).
        if let Some(hw) = plan.hw {
            let pdev = self.func().dev();
            let cur = pci_io::user_read_config(pdev, off.into(), len)?;
            let new = (cur & !hw.mask) | (hw.val & hw.mask);
            pci_io::user_write_config(pdev, off.into(), len, new)?;
        }
        if plan.actions().next().is_some() {
            let mut mem = self.mem.lock();
            for action in plan.actions() {
                self.config_action(dev, &mut mem, action);
            }
            Self::update_gate(dev, &mem);
        }
        Ok(())
    }

    /// Carries out one [`Action`] of a config write, under the memory lock.
    fn config_action(
        &self,
        dev: &vfio::Device<Self>,
        mem: &mut MemState<T::State>,
        action: Action,
    ) {
        let pdev = self.func().dev();
        match action {
            Action::PowerState(state) => {
                if state != 0 {
                    Self::zap(dev, mem);
                }
                if let Err(e) = pci_io::set_power_state(pdev, state, &mut mem.pm_save) {
                    user_warn!(dev.parent(), "power state D{} refused: {:?}\n", state, e);
                }
                mem.low_power = pci_io::power_state(pdev) != 0;
            }
            Action::Reset => match self.reset_function(dev, mem) {
                Ok(()) => T::reset_done(&mut self.access(dev.parent(), mem)),
                Err(e) => user_warn!(
                    dev.parent(),
                    "function reset asked through config space failed: {:?}\n",
                    e
                ),
            },
            Action::ReadRq(bytes) => {
                let _ = pci_io::set_readrq(pdev, bytes);
            }
            // The state is in the virtual config space, read under the memory lock.
            Action::MemoryEnable(_) => {}
            Action::Vpd { cap, addr, data } => {
                let (read, ok) = match data {
                    Some(d) => (None, pci_io::write_vpd(pdev, addr, d).is_ok()),
                    None => match pci_io::read_vpd(pdev, addr) {
                        Ok(d) => (Some(d), true),
                        Err(_) => (None, false),
                    },
                };
                self.config.lock().vpd_done(cap, read, ok);
            }
        }
    }

    fn rw_config(
        &self,
        dev: &vfio::Device<Self>,
        pos: u64,
        len: usize,
        io: Io<'_>,
    ) -> Result<usize> {
        let size = u64::from(self.config_size);
        // Offsets are below the config size (at most 4096): `as u16` is lossless.
        transfer(
            size,
            pos,
            len,
            4,
            io,
            |p, n| Ok(u64::from(self.config_read(p as u16, n)?)),
            |p, n, v| self.config_write(dev, p as u16, n, v as u32),
        )
    }

    /// One access of `width` bytes at `off` of BAR `bar`, under the memory lock: `EIO` while
    /// the function cannot decode (reset, low power, memory disabled, removed).
    fn bar_access(
        &self,
        dev: &device::Device,
        bar: usize,
        off: u64,
        width: u16,
        write: Option<u64>,
    ) -> Result<u64> {
        let mut mem = self.mem.lock();
        if !self.decoding(&mem) {
            return Err(EIO);
        }
        // The host programs the MSI-X table: userspace reads ones and its writes are dropped
        // (it emulates the table, as vfio-pci's users do). The PBA reads through.
        let table = self.msix[bar][0];
        if off < table.offset + table.size && off + u64::from(width) > table.offset {
            return Ok(u64::MAX);
        }
        if self.virtual_bars[bar] || T::TRAPS.iter().any(|t| t.hits(bar, off, width)) {
            let mut vf = self.access(dev, &mut mem);
            return match write {
                Some(v) => T::trap_write(&mut vf, bar, off, width, v).map(|()| 0),
                None => T::trap_read(&mut vf, bar, off, width),
            };
        }
        self.with_bar(&mut mem, bar, |map| match write {
            Some(v) => map.write(off, width, v).map(|()| 0),
            None => map.read(off, width),
        })
    }

    fn rw_bar(
        &self,
        dev: &device::Device,
        bar: usize,
        pos: u64,
        len: usize,
        io: Io<'_>,
    ) -> Result<usize> {
        let size = self.bars[bar].size;
        if size == 0 {
            return Err(EINVAL);
        }
        // The memory lock is taken per access, never across the user copies (they may fault
        // on this very device's mappings, whose handler takes it).
        transfer(
            size,
            pos,
            len,
            8,
            io,
            |p, n| self.bar_access(dev, bar, p, n, None),
            |p, n, v| self.bar_access(dev, bar, p, n, Some(v)).map(|_| ()),
        )
    }

    fn rw(&self, dev: &vfio::Device<Self>, pos: u64, len: usize, io: Io<'_>) -> Result<usize> {
        let index = pos >> REGION_SHIFT;
        let off = pos & REGION_OFFSET_MASK;
        match index {
            0..=5 => self.rw_bar(dev.parent(), index as usize, off, len, io),
            i if i == u64::from(bindings::VFIO_PCI_CONFIG_REGION_INDEX) => {
                self.rw_config(dev, off, len, io)
            }
            i => {
                let index = u32::try_from(i).map_err(|_| EINVAL)?;
                self.rw_vendor_region(dev.parent(), index, off, len, io)
            }
        }
    }

    /// How many regions the device has: the PCI ones, then the vendor's.
    fn num_regions() -> u32 {
        // (A vendor with 2^32 regions does not build: the table is a static slice.)
        bindings::VFIO_PCI_NUM_REGIONS + T::REGIONS.len() as u32
    }

    /// The vendor region of region index `index`, if it is one.
    fn vendor_region(index: u32) -> Option<&'static VendorRegion> {
        let i = index.checked_sub(bindings::VFIO_PCI_NUM_REGIONS)?;
        T::REGIONS.get(i as usize)
    }

    /// Moves `len` bytes at `pos` of vendor region `index` (`EINVAL` for an index that is not
    /// one) between userspace and the vendor's hooks, a page at a time through a kernel
    /// buffer; each hook call under the memory lock, the user copies outside it.
    fn rw_vendor_region(
        &self,
        dev: &device::Device,
        index: u32,
        pos: u64,
        len: usize,
        mut io: Io<'_>,
    ) -> Result<usize> {
        let r = Self::vendor_region(index).ok_or(EINVAL)?;
        let region = (index - bindings::VFIO_PCI_NUM_REGIONS) as usize;
        if pos >= r.size || len as u64 > r.size - pos {
            return Err(EINVAL);
        }
        if matches!(io, Io::Write(_)) && !r.writable {
            return Err(EINVAL);
        }
        const CHUNK: usize = bindings::PAGE_SIZE;
        let mut buf = KVec::from_elem(0u8, len.min(CHUNK), GFP_KERNEL_ACCOUNT)?;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(CHUNK);
            let chunk = &mut buf[..n];
            let off = pos + done as u64;
            match &mut io {
                Io::Read(w) => {
                    {
                        let mut mem = self.mem.lock();
                        T::region_read(&mut self.access(dev, &mut mem), region, off, chunk)?;
                    }
                    w.write_slice(chunk)?;
                }
                Io::Write(rd) => {
                    rd.read_slice(chunk)?;
                    let mut mem = self.mem.lock();
                    T::region_write(&mut self.access(dev, &mut mem), region, off, chunk)?;
                }
            }
            done += n;
        }
        Ok(done)
    }

    /// The user's INTx unmask eventfd was signalled (on vfio's workqueue).
    fn intx_unmask_signalled(dev: &vfio::Device<Self>) {
        let this = dev.data();
        let disabled = this.config.lock().intx_disabled();
        this.irqs.lock().intx.unmask(disabled);
    }

    /// Resets the function for the user (`VFIO_DEVICE_RESET`): back to D0, BAR mappings
    /// revoked, nothing reaching the function until the reset is over.
    fn user_reset(&self, dev: &vfio::Device<Self>) -> Result {
        let mut mem = self.mem.lock();
        // (In low power the gate is closed already; `reset_function` closes it otherwise.)
        if mem.low_power {
            let _ = pci_io::set_power_state(self.func().dev(), 0, &mut mem.pm_save);
            mem.low_power = pci_io::power_state(self.func().dev()) != 0;
        }
        let r = self.reset_function(dev, &mem);
        if r.is_ok() {
            T::reset_done(&mut self.access(dev.parent(), &mut mem));
        }
        Self::update_gate(dev, &mem);
        r
    }
}

/// Moves `len` bytes at `pos` of a region of `size` bytes between userspace and the device,
/// in naturally aligned accesses of up to `max` (8 or 4) bytes done by `read`/`write`
/// (offset, width).
fn transfer(
    size: u64,
    pos: u64,
    len: usize,
    max: u16,
    mut io: Io<'_>,
    read: impl Fn(u64, u16) -> Result<u64>,
    write: impl Fn(u64, u16, u64) -> Result,
) -> Result<usize> {
    if pos >= size || len as u64 > size - pos {
        return Err(EINVAL);
    }
    let mut done = 0usize;
    while done < len {
        let p = pos + done as u64;
        let n = bar::access_width(p, len - done, max);
        match &mut io {
            Io::Read(w) => w.write_slice(&read(p, n)?.to_le_bytes()[..usize::from(n)])?,
            Io::Write(r) => {
                let mut b = [0u8; 8];
                r.read_slice(&mut b[..usize::from(n)])?;
                write(p, n, u64::from_le_bytes(b))?;
            }
        }
        done += usize::from(n);
    }
    Ok(done)
}

/// The direction of a region access.
enum Io<'a> {
    Read(&'a mut UserSliceWriter),
    Write(&'a mut UserSliceReader),
}

#[vtable]
impl<T: VfDriver> vfio::Operations for VfDevice<T> {
    // The `module!` of `mdev_pci_wrap.ko` is the abstraction crate's.
    type OwnerModule = mpw_kernel::MdevPciWrap;
    const NAME: &'static CStr = c_str!("mdev_pci_wrap");

    fn open_device(dev: &vfio::Device<Self>) -> Result {
        let this = dev.data();
        if this.dma.lock().is_none() {
            // The legacy type1 container path: it never binds, so the VF's DMA would not be
            // translated through the user's mappings.
            user_warn!(
                dev.parent(),
                "refusing an open through a legacy VFIO container: passthrough DMA of VF {} \
                 needs iommufd (/dev/vfio/devices/vfioN + VFIO_DEVICE_BIND_IOMMUFD, or \
                 /dev/iommu as the container: `mpw-vfio-container enable` makes \
                 /dev/vfio/vfio one)\n",
                this.func().pdev().as_ref().name()
            );
            return Err(EOPNOTSUPP);
        }
        // Active while open (runtime PM), then enabled, reset, bus mastering off: the user
        // gets a fresh function, as from vfio-pci.
        let pm = pci_io::RuntimePm::get(this.func())?;
        let enabled = pci_io::Enabled::new(this.func())?;
        let mut mem = this.mem.lock();
        let reset_works = match this.reset_function(dev, &mem) {
            Ok(()) => true,
            // The device lock is held (the function is being unbound): try again later.
            Err(e) if e == EAGAIN => return Err(e),
            Err(_) => false,
        };
        // The saved state must not include bus mastering (vfio-pci does the same).
        pci_io::clear_master(this.func().dev());
        let pristine = pci_io::SavedState::take(this.func());
        // A fresh virtual config space: nothing of the last user's (BAR addresses, MSI
        // address and data) shows.
        {
            let mut config = this.config.lock();
            config.reset();
            let cmd = pci_io::config_dword(this.func().dev(), 0x4) as u16;
            config.sync_command(cmd);
            mem.memory_enabled = config.memory_enabled();
        }
        mem.open = true;
        mem.revoked = false;
        mem.low_power = false;
        // (A reset announced to a device that closed before it ended cannot still be going
        // on: this open's own reset just took the device lock.)
        mem.foreign_reset = false;
        if let Err(e) = T::open(&mut this.access(dev.parent(), &mut mem)) {
            mem.open = false;
            Self::zap(dev, &mem);
            mem.maps = [const { None }; 6];
            *this.bar_maps.lock() = [const { None }; 6];
            return Err(e);
        }
        Self::update_gate(dev, &mem);
        drop(mem);
        *this.open.lock() = Some(OpenState {
            pristine,
            reset_works,
            _enabled: enabled,
            _pm: pm,
        });
        *this.shared.open_dev.lock() = Some(dev.into());
        Ok(())
    }

    fn close_device(dev: &vfio::Device<Self>) {
        let this = dev.data();
        // No more announced resets for this device (and no reference to it left).
        drop(this.shared.open_dev.lock().take());
        // Stop the VF's DMA (and MSI writes) before the user's mappings and eventfds go away.
        pci_io::clear_master(this.func().dev());
        // (The unmask eventfd's callback takes `irqs`: it ends first.)
        this.intx_unmask.lock().as_mut().disable();
        this.irqs.lock().clear();
        *this.shared.err.lock() = None;
        let state = this.open.lock().take();
        let mut mem = this.mem.lock();
        if state.is_some() {
            T::close(&mut this.access(dev.parent(), &mut mem));
        }
        Self::zap(dev, &mem);
        mem.open = false;
        mem.maps = [const { None }; 6];
        *this.bar_maps.lock() = [const { None }; 6];
        if mem.low_power {
            let _ = pci_io::set_power_state(this.func().dev(), 0, &mut mem.pm_save);
            mem.low_power = false;
        }
        if let Some(state) = state {
            // Leave nothing of the user's state in the VF: reset it, then put back the config
            // space it had after the reset at open (the reset alone would restore the user's).
            if state.reset_works {
                if let Err(e) = this.reset_function(dev, &mem) {
                    dev_dbg!(dev.parent(), "no reset at close: {:?}\n", e);
                }
            }
            if let Some(pristine) = state.pristine {
                pristine.restore();
            }
            // Dropping the rest disables the function and lets it suspend.
        }
    }

    fn mmap(dev: &vfio::Device<Self>, vma: &VmaNew) -> Result {
        let this = dev.data();
        let pos = vfio::vma_offset(vma);
        let off = pos & REGION_OFFSET_MASK;
        let len = (vma.end() - vma.start()) as u64;
        let index = bar_index(pos).ok_or(EINVAL)?;
        if vma.flags() & vm_flags::SHARED == 0 {
            return Err(EINVAL);
        }
        if !bar::may_map(&this.mappable(index)?, off, len) {
            user_dbg!(
                dev.parent(),
                "refusing mmap of BAR{} {:#x}+{:#x}: not a mappable area\n",
                index,
                off,
                len
            );
            return Err(EINVAL);
        }
        // Claim the BAR now (as vfio-pci does at mmap), so a fault never has to. (Not under
        // the memory lock: this runs under the mm's `mmap_lock`.)
        this.bar_map(index)?;
        dev.mmap_faulting(vma);
        Ok(())
    }

    fn fault(dev: &vfio::Device<Self>, fault: &mut vfio::Fault) -> Result {
        let this = dev.data();
        let offset = fault.offset();
        let index = bar_index(offset).ok_or(EINVAL)?;
        let off = offset & REGION_OFFSET_MASK;
        if !bar::may_map(&this.mappable(index)?, off, bindings::PAGE_SIZE as u64) {
            return Err(EINVAL);
        }
        // The gate, not the memory lock (this runs under the mm's `mmap_lock`, see
        // `MemState`): held while the page is inserted, so a zap (which closes the gate under
        // it) cannot run between the check and the insertion.
        let gate = this.gate.lock();
        if !*gate {
            return Err(EIO);
        }
        fault.insert(BarPage::new(this.func().dev(), index as u32, off)?);
        drop(gate);
        Ok(())
    }

    fn request(dev: &vfio::Device<Self>, count: u32) {
        let this = dev.data();
        // The mdev is being removed while userspace has it open: the user loses BAR access
        // now; unregistering waits for the last close, asking again every few seconds.
        // Userspace hears it on the REQ eventfd.
        {
            let mut mem = this.mem.lock();
            mem.revoked = true;
            Self::zap(dev, &mem);
        }
        let relayed = this.irqs.lock().signal_request();
        match (count, relayed) {
            (0, true) => dev_info!(
                dev.parent(),
                "removal requested: relayed to userspace, waiting for it to close the device\n"
            ),
            (0, false) => dev_info!(
                dev.parent(),
                "removal requested: no request eventfd, waiting for userspace to close the \
                 device\n"
            ),
            _ => dev_info!(dev.parent(), "still in use, removal request {}\n", count),
        }
    }

    fn bind_iommufd(
        dev: &vfio::Device<Self>,
        ctx: &iommufd::Ctx,
        out_device_id: &mut u32,
    ) -> Result {
        let this = dev.data();
        let vf: &device::Device<device::Bound> = this.func().dev().as_ref();
        if let Some(blocker) = iommufd::group_dma_blocker(vf) {
            user_warn!(
                dev.parent(),
                "cannot give VF {} to userspace: {} in its IOMMU group is bound to a host DMA \
                 driver (unbind it, or bind it to vfio-pci)\n",
                vf.name(),
                blocker.name()
            );
            return Err(EBUSY);
        }
        match iommufd::BoundDevice::bind(ctx, vf) {
            Ok((bound, id)) => {
                *out_device_id = id;
                let access = iommufd::Access::new(ctx)
                    .inspect_err(|e| {
                        dev_dbg!(
                            dev.parent(),
                            "no kernel access to the user's IOAS: {:?}\n",
                            e
                        )
                    })
                    .ok();
                *this.dma.lock() = Some(UserDma { access, bound });
                Ok(())
            }
            Err(e) => {
                if e == EBUSY || e == EPERM {
                    user_warn!(
                        dev.parent(),
                        "the IOMMU group of VF {} is in use by another iommufd context: devices \
                         sharing a group can only be used from one context\n",
                        vf.name()
                    );
                } else {
                    user_warn!(
                        dev.parent(),
                        "binding VF {} to iommufd failed: {:?}\n",
                        vf.name(),
                        e
                    );
                }
                Err(e)
            }
        }
    }

    fn unbind_iommufd(dev: &vfio::Device<Self>) {
        // Dropping the binding detaches the VF and releases its IOMMU group.
        drop(dev.data().dma.lock().take());
    }

    fn attach_ioas(dev: &vfio::Device<Self>, pt_id: &mut u32) -> Result {
        let mut dma = dev.data().dma.lock();
        let dma: &mut Option<UserDma> = &mut dma;
        let dma = dma.as_mut().ok_or(EINVAL)?;
        let requested = *pt_id;
        dma.bound.attach(pt_id)?;
        // The vendor's access follows the VF to that IOAS (a HWPT has none to offer).
        if let Some(access) = dma.access.as_mut() {
            if let Err(e) = access.attach(requested) {
                access.detach();
                dev_dbg!(
                    dev.parent(),
                    "no kernel access to IOVAs: {} is not an IOAS ({:?})\n",
                    requested,
                    e
                );
            }
        }
        Ok(())
    }

    fn detach_ioas(dev: &vfio::Device<Self>) {
        let mut dma = dev.data().dma.lock();
        let dma: &mut Option<UserDma> = &mut dma;
        if let Some(dma) = dma.as_mut() {
            if let Some(access) = dma.access.as_mut() {
                access.detach();
            }
            dma.bound.detach();
        }
    }

    fn read(
        dev: &vfio::Device<Self>,
        buf: &mut UserSliceWriter,
        len: usize,
        pos: u64,
    ) -> Result<usize> {
        dev.data().rw(dev, pos, len, Io::Read(buf))
    }

    fn write(
        dev: &vfio::Device<Self>,
        buf: &mut UserSliceReader,
        len: usize,
        pos: u64,
    ) -> Result<usize> {
        dev.data().rw(dev, pos, len, Io::Write(buf))
    }

    fn ioctl(dev: &vfio::Device<Self>, cmd: u32, arg: usize) -> Result<isize> {
        let this = dev.data();
        // `struct vfio_device_info` and `struct vfio_irq_info` both start with `argsz` and
        // three `u32`s, which is all that is read and written of them.
        match cmd {
            crate::uapi::VFIO_DEVICE_GET_INFO => {
                let [argsz, ..] = vfio::read_user_u32s::<4>(arg)?;
                if argsz < 16 {
                    return Err(EINVAL);
                }
                let mut flags = bindings::VFIO_DEVICE_FLAGS_PCI;
                if this.open.lock().as_ref().is_some_and(|s| s.reset_works) {
                    flags |= bindings::VFIO_DEVICE_FLAGS_RESET;
                }
                vfio::write_user_u32s(
                    arg,
                    &[
                        argsz,
                        flags,
                        Self::num_regions(),
                        bindings::VFIO_PCI_NUM_IRQS,
                    ],
                )?;
                Ok(0)
            }
            crate::uapi::VFIO_DEVICE_RESET => {
                // (The device cannot close meanwhile: the ioctl holds its fd.)
                let reset_works = this.open.lock().as_ref().is_some_and(|s| s.reset_works);
                if !reset_works {
                    return Err(EINVAL);
                }
                this.user_reset(dev).inspect_err(|e| {
                    user_warn!(
                        dev.parent(),
                        "reset of {} failed: {:?}\n",
                        this.func().pdev().as_ref().name(),
                        e
                    )
                })?;
                Ok(0)
            }
            crate::uapi::VFIO_DEVICE_GET_PCI_HOT_RESET_INFO
            | crate::uapi::VFIO_DEVICE_PCI_HOT_RESET => {
                // The function has its own reset (FLR), and a VF cannot be reset by its bus
                // alone: there is no bus reset to offer, which is what vfio-pci answers for a
                // function whose slot or bus cannot be reset (`-ENODEV`).
                Err(ENODEV)
            }
            crate::uapi::VFIO_DEVICE_GET_IRQ_INFO => {
                let [argsz, _, index, _] = vfio::read_user_u32s(arg)?;
                if argsz < 16 || index >= bindings::VFIO_PCI_NUM_IRQS {
                    return Err(EINVAL);
                }
                let count = this.irq_counts.vectors(index);
                vfio::write_user_u32s(arg, &[argsz, IrqCounts::flags(index), index, count])?;
                Ok(0)
            }
            crate::uapi::VFIO_DEVICE_SET_IRQS => {
                let counts = this.irq_counts;
                let req = vfio::IrqSet::from_user(arg, bindings::VFIO_PCI_NUM_IRQS, |i| {
                    counts.vectors(i)
                })
                .inspect_err(|e| user_dbg!(dev.parent(), "SET_IRQS refused: {:?}\n", e))?;
                if req.index() == bindings::VFIO_PCI_ERR_IRQ_INDEX {
                    interrupts::set_single(&mut this.shared.err.lock(), &req)?;
                    return Ok(0);
                }
                if req.index() == bindings::VFIO_PCI_INTX_IRQ_INDEX {
                    // (The core refused it unless the vendor presents a pin.) One request at
                    // a time on the INTx index, its unmask eventfd set up after `irqs` is
                    // released.
                    let mut unmask = this.intx_unmask.lock();
                    let disabled = this.config.lock().intx_disabled();
                    let next = this.irqs.lock().intx.set(&req, disabled)?;
                    match next {
                        UnmaskFd::Keep => {}
                        UnmaskFd::Set(fd) => {
                            unmask
                                .as_mut()
                                .enable(dev.into(), Self::intx_unmask_signalled, fd)?
                        }
                        UnmaskFd::Remove => unmask.as_mut().disable(),
                    }
                    return Ok(0);
                }
                // A positive answer: only that many MSI vectors could be had (vfio-pci's
                // answer, on which QEMU retries with fewer).
                let r = this.irqs.lock().set(dev.parent(), this.func(), req)?;
                Ok(r as isize)
            }
            _ => Err(ENOTTY),
        }
    }

    fn region_info(dev: &vfio::Device<Self>, info: &mut vfio::RegionInfo<'_>) -> Result {
        let this = dev.data();
        let index = info.index();
        let offset = u64::from(index) << REGION_SHIFT;
        let rw = bindings::VFIO_REGION_INFO_FLAG_READ | bindings::VFIO_REGION_INFO_FLAG_WRITE;
        match index {
            0..=5 => {
                let bar = index as usize;
                let len = this.bars[bar].size;
                let areas = this.mappable(bar)?;
                let mut flags = if len > 0 { rw } else { 0 };
                if !areas.is_empty() {
                    flags |= bindings::VFIO_REGION_INFO_FLAG_MMAP;
                }
                info.set(flags, len, offset);
                // Not the whole BAR: say which parts.
                if !areas.is_empty() && areas.iter().map(|a| a.size).sum::<u64>() != len {
                    info.add_sparse_mmap(&areas)?;
                }
                // The MSI-X table (or PBA) is in this BAR and may be mapped all the same.
                if !areas.is_empty() && this.msix[bar].iter().any(|a| a.size > 0) {
                    info.add_msix_mappable()?;
                }
            }
            i if i == bindings::VFIO_PCI_CONFIG_REGION_INDEX => {
                info.set(rw, u64::from(this.config_size), offset)
            }
            // No expansion ROM is offered; VGA does not apply.
            i if i < bindings::VFIO_PCI_NUM_REGIONS => info.set(0, 0, offset),
            i => {
                let r = Self::vendor_region(i).ok_or(EINVAL)?;
                let mut flags = bindings::VFIO_REGION_INFO_FLAG_READ;
                if r.writable {
                    flags |= bindings::VFIO_REGION_INFO_FLAG_WRITE;
                }
                info.set(flags, r.size, offset);
                info.add_type(r.kind, r.subtype)?;
            }
        }
        Ok(())
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A PCI VF wrapped as an mdev: the generic logic between the abstractions and a vendor.
//!
//! A vendor driver implements [`VfDriver`] and declares its module with
//! [`module_vf_driver!`](crate::module_vf_driver). The library then:
//!
//! 1. binds to the vendor's VFs (by ID, or by `driver_override`) with a PCI driver that owns
//!    their DMA (`driver_managed_dma`), and registers each bound VF as an mdev parent with
//!    the vendor's mdev types, one instance per VF;
//! 2. on `echo $UUID > .../create`, allocates and registers a VFIO device for the mdev;
//! 3. serves the VFIO device: device and region info, a virtual config space (real vendor
//!    and device IDs, sizable BARs), and BAR read/write passthrough to the VF;
//! 4. gives the VF's DMA to userspace: binding the VFIO device to an iommufd context binds
//!    the VF itself to it and attaches it to the user's IOAS (see [`crate::iommufd`]). An
//!    open through the legacy type1 container, where no such binding happens, is refused.

use crate::{
    bar::{
        self,
        Area, //
    },
    bindings,
    config::{
        Bar,
        BarKind,
        VirtConfig, //
    },
    interrupts::{
        Interrupts, //
        IrqCounts,
    },
    iommufd,
    mdev,
    pci_driver,
    pci_io::{
        self,
        IoMap, //
    },
    vfio, //
};
use core::marker::PhantomData;
use kernel::{
    c_str, device,
    mm::virt::{
        flags as vm_flags,
        VmaNew, //
    },
    new_mutex, pci,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
};

/// The region offset encoding every vfio-pci device uses: region index in bits 40 and up.
pub const REGION_SHIFT: u32 = 40;
const REGION_OFFSET_MASK: u64 = (1u64 << REGION_SHIFT) - 1;

/// A vendor's description of the VFs it wraps. See the module documentation.
pub trait VfDriver: Send + Sync + Sized + 'static {
    /// The driver name: of the VF PCI driver (what `driver_override` names) and of the mdev
    /// driver. The mdev type directories are `<NAME>-<type sysfs name>`.
    const NAME: &'static CStr;

    /// The VF IDs to bind to; `OVERRIDE_ONLY` binds only through `driver_override`.
    const ID_TABLE: pci_driver::IdTable;

    /// The mdev types every wrapped VF offers.
    const TYPES: &'static [mdev::TypeInfo];
}

/// Where a vendor module keeps its mdev driver; implemented by
/// [`module_vf_driver!`](crate::module_vf_driver), not by hand.
#[doc(hidden)]
pub trait VfModule: VfDriver {
    /// The vendor module's (static) mdev driver registration.
    fn mdev_driver() -> &'static mdev::DriverRegistration<MdevDriver<Self>>;
}

/// The state of a VF bound to a [`VfDriver`]: an mdev parent whose mdevs get the VF.
#[pin_data]
pub struct VfParent<T: VfDriver> {
    #[pin]
    parent: mdev::Parent<ARef<pci::Device>>,
    _t: PhantomData<T>,
}

/// The VF PCI driver of a [`VfDriver`].
pub struct VfPciDriver<T: VfDriver>(PhantomData<T>);

impl<T: VfModule> pci_driver::Driver for VfPciDriver<T> {
    type Data = VfParent<T>;
    const ID_TABLE: pci_driver::IdTable = T::ID_TABLE;

    fn probe(dev: &pci::Device<device::Core<'_>>) -> impl PinInit<Self::Data, Error> {
        dev_info!(
            dev.as_ref(),
            "wrapping VF {:04x}:{:04x} as an mdev parent\n",
            dev.vendor_id().as_raw(),
            dev.device_id()
        );
        try_pin_init!(VfParent {
            parent <- mdev::Parent::new(dev.as_ref(), T::mdev_driver(), T::TYPES, dev.into()),
            _t: PhantomData,
        })
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
    type ParentData = ARef<pci::Device>;
    const DEVICE_API: &'static CStr = c_str!("vfio-pci");
    // One mdev per VF: the VF is the whole device.
    const MAX_INSTANCES: u32 = 1;

    fn probe(mdev: &mdev::Device, vf: &ARef<pci::Device>) -> Result<Pin<KBox<Self::Data>>> {
        let vdev = vfio::Device::new(mdev.as_dev(), VfDevice::<T>::new(vf.clone()))?;
        let reg = vfio::Registration::new(vdev)?;
        dev_info!(mdev.as_dev(), "created on VF {}\n", vf.as_ref().name());
        Ok(KBox::pin(MdevState { _reg: reg }, GFP_KERNEL)?)
    }

    fn remove(mdev: &mdev::Device, data: Pin<KBox<Self::Data>>) {
        // Unregistering waits until userspace has closed the device.
        drop(data);
        dev_info!(mdev.as_dev(), "removed\n");
    }
}

/// What exists while the device is open.
struct OpenState {
    /// The memory BARs, mapped; shared with reads and writes in progress.
    bars: [Option<Arc<IoMap>>; 6],
    /// The VF has a function-level reset (it worked at open).
    reset_works: bool,
    /// The VF's config space after the reset at open, put back at close.
    pristine: Option<pci_io::SavedState>,
}

/// The VFIO device of a wrapped VF.
#[pin_data]
pub struct VfDevice<T: VfDriver> {
    pdev: ARef<pci::Device>,
    /// The VF's BARs, as the PCI core sized them at bind time.
    bars: [Bar; 6],
    /// The virtual config space each open starts from.
    config_init: VirtConfig,
    #[pin]
    config: Mutex<VirtConfig>,
    #[pin]
    open: Mutex<Option<OpenState>>,
    /// The VF bound to the user's iommufd context, while the device is bound to one.
    #[pin]
    dma: Mutex<Option<iommufd::BoundDevice>>,
    /// The vectors of each interrupt index.
    irq_counts: IrqCounts,
    /// The MSI-X table and PBA in each BAR (empty areas elsewhere).
    msix: [[Area; 2]; 6],
    #[pin]
    irqs: Mutex<Interrupts>,
    _t: PhantomData<T>,
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

impl<T: VfDriver> VfDevice<T> {
    fn new(pdev: ARef<pci::Device>) -> impl PinInit<Self, Error> {
        let bars = vf_bars(&pdev);
        let mut config = VirtConfig::new(pdev.vendor_id().as_raw(), pdev.device_id(), &bars);
        // Capability offsets are below 256: `as u16` is lossless.
        let msix_cap = pci_io::msix_cap(&pdev);
        if msix_cap != 0 {
            config = config.with_msix(msix_cap as u16);
        }
        let msi_cap = pci_io::msi_cap(&pdev);
        if msi_cap != 0 {
            let hw_flags = (pci_io::config_dword(&pdev, msi_cap) >> 16) as u16;
            config = config.with_msi(msi_cap as u16, hw_flags);
        }
        let irq_counts = IrqCounts::of(&pdev);
        let msix = core::array::from_fn(|bar| pci_io::msix_ranges(&pdev, bar));
        try_pin_init!(Self {
            pdev,
            bars,
            config_init: config.clone(),
            config <- new_mutex!(config),
            open <- new_mutex!(None),
            dma <- new_mutex!(None),
            irq_counts,
            msix,
            irqs <- new_mutex!(Interrupts::default()),
            _t: PhantomData,
        })
    }

    fn cfg_size(&self) -> u64 {
        pci_io::cfg_size(&self.pdev)
    }

    fn bar_len(&self, bar: usize) -> u64 {
        self.bars[bar].size
    }

    /// The parts of memory BAR `bar` userspace may mmap.
    fn mappable(&self, bar: usize) -> Result<KVec<Area>> {
        let b = self.bars[bar];
        if !matches!(b.kind, BarKind::Mem32 { .. } | BarKind::Mem64 { .. }) {
            return Ok(KVec::new());
        }
        bar::mappable_areas(b.size, &self.msix[bar], bindings::PAGE_SIZE as u64)
    }

    /// Reads `len` bytes of config space at `off` through the virtual config space.
    fn config_read(&self, off: u16, len: u16) -> Result<u32> {
        let hw = pci_io::user_read_config_dword(&self.pdev, (off & !3).into())?;
        Ok(self.config.lock().read(off, len, hw))
    }

    /// Writes `len` bytes of config space at `off`, emulated or passed through.
    fn config_write(&self, off: u16, len: u16, val: u32) -> Result {
        if self.config.lock().write(off, len, val) {
            return Ok(());
        }
        pci_io::user_write_config(&self.pdev, off.into(), len, val)
    }

    fn rw_config(&self, pos: u64, len: usize, io: Io<'_>) -> Result<usize> {
        // Offsets are below the config size (at most 4096): `as u16` is lossless.
        transfer(
            self.cfg_size(),
            pos,
            len,
            io,
            |p, n| self.config_read(p as u16, n),
            |p, n, v| self.config_write(p as u16, n, v),
        )
    }

    fn rw_bar(&self, bar: usize, pos: u64, len: usize, io: Io<'_>) -> Result<usize> {
        // The mutex is not held across the user copies: they may fault and take the mmap
        // lock, which `mmap` holds when it calls in. The reference keeps the mapping.
        let map = {
            let open = self.open.lock();
            open.as_ref()
                .and_then(|o| o.bars[bar].clone())
                .ok_or(EINVAL)?
        };
        // The host programs the MSI-X table: userspace reads ones and its writes are dropped
        // (it emulates the table, as vfio-pci's users do). The PBA reads through.
        let table = self.msix[bar][0];
        let in_table = |p: u64| p >= table.offset && p - table.offset < table.size;
        transfer(
            map.size(),
            pos,
            len,
            io,
            |p, n| {
                if in_table(p) {
                    return Ok(u32::MAX);
                }
                map.read(p, n)
            },
            |p, n, v| {
                if in_table(p) {
                    return Ok(());
                }
                map.write(p, n, v)
            },
        )
    }

    fn rw(&self, pos: u64, len: usize, io: Io<'_>) -> Result<usize> {
        let index = pos >> REGION_SHIFT;
        let off = pos & REGION_OFFSET_MASK;
        match index {
            0..=5 => self.rw_bar(index as usize, off, len, io),
            i if i == u64::from(bindings::VFIO_PCI_CONFIG_REGION_INDEX) => {
                self.rw_config(off, len, io)
            }
            _ => Err(EINVAL),
        }
    }
}

/// The access width for `remaining` bytes at `pos`: the largest of 4/2/1 that is aligned.
fn access_len(pos: u64, remaining: usize) -> u16 {
    if remaining >= 4 && pos % 4 == 0 {
        4
    } else if remaining >= 2 && pos % 2 == 0 {
        2
    } else {
        1
    }
}

/// Moves `len` bytes at `pos` of a region of `size` bytes between userspace and the device,
/// in naturally aligned accesses of 4, 2 or 1 bytes done by `read`/`write` (offset, width).
fn transfer(
    size: u64,
    pos: u64,
    len: usize,
    mut io: Io<'_>,
    read: impl Fn(u64, u16) -> Result<u32>,
    write: impl Fn(u64, u16, u32) -> Result,
) -> Result<usize> {
    if pos >= size || len as u64 > size - pos {
        return Err(EINVAL);
    }
    let mut done = 0usize;
    while done < len {
        let p = pos + done as u64;
        let n = access_len(p, len - done);
        match &mut io {
            Io::Read(w) => w.write_slice(&read(p, n)?.to_le_bytes()[..usize::from(n)])?,
            Io::Write(r) => {
                let mut b = [0u8; 4];
                r.read_slice(&mut b[..usize::from(n)])?;
                write(p, n, u32::from_le_bytes(b))?;
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
    const NAME: &'static CStr = c_str!("mdev_pci_wrap");

    fn open_device(dev: &vfio::Device<Self>) -> Result {
        let this = dev.data();
        if this.dma.lock().is_none() {
            // The legacy type1 container path: it never binds, so the VF's DMA would not be
            // translated through the user's mappings.
            dev_warn!(
                dev.parent(),
                "refusing an open through a legacy VFIO container: passthrough DMA of VF {} \
                 needs iommufd (/dev/vfio/devices/vfioN + VFIO_DEVICE_BIND_IOMMUFD, or \
                 /dev/iommu as the container)\n",
                this.pdev.as_ref().name()
            );
            return Err(EOPNOTSUPP);
        }
        pci_io::enable(&this.pdev)?;
        // Hand the user a freshly reset function, as vfio-pci does.
        let reset_works = match pci_io::try_reset(&this.pdev) {
            Ok(()) => true,
            Err(e) if e == EAGAIN => {
                pci_io::disable(&this.pdev);
                return Err(e);
            }
            Err(_) => false,
        };
        let mut state = OpenState {
            bars: [const { None }; 6],
            reset_works,
            pristine: pci_io::SavedState::take(&this.pdev),
        };
        // And a fresh virtual config space: nothing of the last user's (BAR addresses, MSI
        // address and data) shows.
        *this.config.lock() = this.config_init.clone();
        for (i, bar) in this.bars.iter().enumerate() {
            if !matches!(bar.kind, BarKind::Mem32 { .. } | BarKind::Mem64 { .. }) {
                continue;
            }
            let map = IoMap::new(this.pdev.clone(), i as u32, bar.size)
                .and_then(|m| Ok(Arc::new(m, GFP_KERNEL)?));
            match map {
                Ok(m) => state.bars[i] = Some(m),
                Err(e) => {
                    dev_err!(this.pdev.as_ref(), "cannot map BAR{}: {:?}\n", i, e);
                    drop(state);
                    pci_io::disable(&this.pdev);
                    return Err(e);
                }
            }
        }
        *this.open.lock() = Some(state);
        Ok(())
    }

    fn close_device(dev: &vfio::Device<Self>) {
        let this = dev.data();
        // Stop the VF's DMA (and MSI writes) before the user's mappings and eventfds go away.
        pci_io::clear_master(&this.pdev);
        this.irqs.lock().clear();
        let state = this.open.lock().take();
        if let Some(state) = state {
            // Leave nothing of the user's state in the VF: reset it, then put back the config
            // space it had after the reset at open (the reset alone would restore the user's).
            if state.reset_works {
                if let Err(e) = pci_io::try_reset(&this.pdev) {
                    dev_dbg!(dev.parent(), "no reset at close: {:?}\n", e);
                }
            }
            if let Some(pristine) = state.pristine {
                pristine.restore(&this.pdev);
            }
        }
        pci_io::disable(&this.pdev);
    }

    fn mmap(dev: &vfio::Device<Self>, vma: &VmaNew) -> Result {
        let this = dev.data();
        let pos = vfio::vma_offset(vma);
        let index = pos >> REGION_SHIFT;
        let off = pos & REGION_OFFSET_MASK;
        let len = (vma.end() - vma.start()) as u64;
        // (No device mutex here: mmap runs under the mmap lock, and the fd being mapped
        // keeps the device open.)
        if vma.flags() & vm_flags::SHARED == 0 || index > 5 {
            return Err(EINVAL);
        }
        if !bar::may_map(&this.mappable(index as usize)?, off, len) {
            dev_dbg!(
                dev.parent(),
                "refusing mmap of BAR{} {:#x}+{:#x}: not a mappable area\n",
                index,
                off,
                len
            );
            return Err(EINVAL);
        }
        pci_io::mmap_bar(vma, &this.pdev, index as u32, off)
    }

    fn request(dev: &vfio::Device<Self>, count: u32) {
        // The mdev is being removed while userspace has it open: unregistering waits for the
        // last close, asking again every few seconds. Userspace hears it on the REQ eventfd.
        let relayed = dev.data().irqs.lock().signal_request();
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
        let vf: &device::Device = this.pdev.as_ref();
        if let Some(blocker) = iommufd::group_dma_blocker(vf) {
            dev_warn!(
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
                *this.dma.lock() = Some(bound);
                Ok(())
            }
            Err(e) => {
                if e == EBUSY || e == EPERM {
                    dev_warn!(
                        dev.parent(),
                        "the IOMMU group of VF {} is in use by another iommufd context: devices \
                         sharing a group can only be used from one context\n",
                        vf.name()
                    );
                } else {
                    dev_warn!(
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
        let bound: &mut Option<iommufd::BoundDevice> = &mut dma;
        bound.as_mut().ok_or(EINVAL)?.attach(pt_id)
    }

    fn detach_ioas(dev: &vfio::Device<Self>) {
        let mut dma = dev.data().dma.lock();
        let bound: &mut Option<iommufd::BoundDevice> = &mut dma;
        if let Some(bound) = bound.as_mut() {
            bound.detach();
        }
    }

    fn read(
        dev: &vfio::Device<Self>,
        buf: &mut UserSliceWriter,
        len: usize,
        pos: u64,
    ) -> Result<usize> {
        dev.data().rw(pos, len, Io::Read(buf))
    }

    fn write(
        dev: &vfio::Device<Self>,
        buf: &mut UserSliceReader,
        len: usize,
        pos: u64,
    ) -> Result<usize> {
        dev.data().rw(pos, len, Io::Write(buf))
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
                        bindings::VFIO_PCI_NUM_REGIONS,
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
                pci_io::try_reset(&this.pdev).inspect_err(|e| {
                    dev_warn!(
                        dev.parent(),
                        "reset of VF {} failed: {:?}\n",
                        this.pdev.as_ref().name(),
                        e
                    )
                })?;
                Ok(0)
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
                .inspect_err(|e| dev_dbg!(dev.parent(), "SET_IRQS refused: {:?}\n", e))?;
                // A positive answer: only that many MSI vectors could be had (vfio-pci's
                // answer, on which QEMU retries with fewer).
                let r = this.irqs.lock().set(dev.parent(), &this.pdev, req)?;
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
                let len = this.bar_len(index as usize);
                let areas = this.mappable(index as usize)?;
                let mut flags = if len > 0 { rw } else { 0 };
                if !areas.is_empty() {
                    flags |= bindings::VFIO_REGION_INFO_FLAG_MMAP;
                }
                info.set(flags, len, offset);
                // Not the whole BAR: say which parts (the rest holds MSI-X structures).
                if !areas.is_empty() && areas.iter().map(|a| a.size).sum::<u64>() != len {
                    info.add_sparse_mmap(&areas)?;
                }
            }
            i if i == bindings::VFIO_PCI_CONFIG_REGION_INDEX => {
                info.set(rw, this.cfg_size(), offset)
            }
            // A VF has no expansion ROM; VGA does not apply.
            i if i < bindings::VFIO_PCI_NUM_REGIONS => info.set(0, 0, offset),
            _ => return Err(EINVAL),
        }
        Ok(())
    }
}

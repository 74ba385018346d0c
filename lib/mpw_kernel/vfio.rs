// SPDX-License-Identifier: GPL-2.0

//! VFIO devices: a `struct vfio_device` embedding Rust data, and its operations.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h).
//!
//! [`Device<T>`] is allocated by the VFIO core (`_vfio_alloc_device`) with room for `T` right
//! after the `struct vfio_device`, the way `drm::Device` embeds driver data. `T` implements
//! [`Operations`], a `#[vtable]` trait over `struct vfio_device_ops`; the VFIO core calls it
//! for the device file descriptors that userspace opens through the group or the cdev.

use crate::{
    bindings,
    iommufd,
    mdev::AsRawDevice, //
};
use core::{
    marker::PhantomData,
    mem,
    ptr::NonNull, //
};
use kernel::{
    device,
    error::{
        from_err_ptr,
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    mm::virt::VmaNew,
    prelude::*,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};

/// A VFIO device whose driver data is `T`.
///
/// # Invariants
///
/// `vdev` is a `struct vfio_device` allocated by `_vfio_alloc_device` with the size of `Self`,
/// whose `ops` is `VTable::<T>::VTABLE`, and `data` is initialised. It is reference counted
/// through `vdev.device`; the last reference drops `data` and frees the allocation.
#[repr(C)]
pub struct Device<T: Operations> {
    vdev: Opaque<bindings::vfio_device>,
    data: T,
}

impl<T: Operations> Device<T> {
    /// Allocates a VFIO device for `parent` (for an mdev: the mdev's device) with data `data`.
    ///
    /// The device is not yet visible to userspace: see [`Registration`].
    pub fn new(parent: &device::Device, data: impl PinInit<T, Error>) -> Result<ARef<Self>> {
        const {
            // `vfio_alloc_device()` requires the `struct vfio_device` at offset 0.
            assert!(mem::offset_of!(Self, vdev) == 0);
            // `_vfio_alloc_device` allocates with kvzalloc: at least 8-byte alignment.
            assert!(mem::align_of::<Self>() <= 8);
        };
        // SAFETY: `parent` is a valid device; `ALLOC_VTABLE` has no `init` and no `release`,
        // so a failure below frees the memory without touching the uninitialised `data`.
        let raw = unsafe {
            bindings::_vfio_alloc_device(
                mem::size_of::<Self>(),
                parent.as_raw_mut(),
                &VTable::<T>::ALLOC_VTABLE,
            )
        };
        let raw = from_err_ptr(raw)?;
        let this = raw.cast::<Self>();
        // SAFETY: `this` points to a zeroed allocation of `size_of::<Self>()` bytes.
        let data_ptr = unsafe { &raw mut (*this).data };
        // SAFETY: `data_ptr` is valid for writes, and the allocation is never moved.
        if let Err(e) = unsafe { pin_init::raw_try_init(data_ptr, data) } {
            // SAFETY: `raw` holds the only reference; the ops have no `release`.
            unsafe { bindings::mpw_helper_vfio_put_device(raw) };
            return Err(e);
        }
        // INVARIANT: `data` is initialised; from now on `release` drops it.
        // SAFETY: Nobody else knows `raw` yet, so its `ops` can be replaced.
        unsafe { (*raw).ops = &VTable::<T>::VTABLE };
        // SAFETY: `this` is valid and we hand its initial reference to the `ARef`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(this)) })
    }

    fn as_raw(&self) -> *mut bindings::vfio_device {
        self.vdev.get()
    }

    /// Returns the driver data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Returns the device this VFIO device belongs to (for an mdev: the mdev's device).
    pub fn parent(&self) -> &device::Device {
        // SAFETY: `dev` is set at allocation to a device that outlives the VFIO device.
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }

    /// Revokes every user mapping of the file range `[start, start + len)` of the device's
    /// fds (`unmap_mapping_range` on the device inode): the next access faults, and
    /// [`Operations::fault`] decides again.
    pub fn zap(&self, start: u64, len: u64) {
        // SAFETY: `self` is a live VFIO device; the helper checks that it has an inode.
        unsafe { bindings::mpw_helper_vfio_zap(self.as_raw(), start, len) }
    }

    /// Makes `vma` (being set up by [`Operations::mmap`]) a fault-based mapping of device
    /// memory: nothing is mapped now; each page is mapped when first touched, by
    /// [`Operations::fault`], and [`Device::zap`] revokes them.
    pub fn mmap_faulting(&self, vma: &VmaNew) {
        // SAFETY: `vma` is being set up by mmap of one of this device's fds, which holds the
        // device until the VMA is gone, so `self` outlives every fault of the VMA. The ops
        // table is static.
        unsafe {
            bindings::mpw_helper_vma_setup_io(
                vma.as_ptr(),
                &VTable::<T>::VM_OPS,
                self.as_raw().cast(),
            )
        }
    }

    /// Recovers the `Device<T>` from a `struct vfio_device` the VFIO core passes to an op.
    ///
    /// # Safety
    ///
    /// `vdev` must be the `vdev` field of a live `Device<T>`.
    unsafe fn from_raw<'a>(vdev: *mut bindings::vfio_device) -> &'a Self {
        // SAFETY: `vdev` is at offset 0 of `Device<T>` (checked in `new`).
        unsafe { &*vdev.cast::<Self>() }
    }
}

// SAFETY: The device's refcount is its embedded `struct device`'s.
unsafe impl<T: Operations> AlwaysRefCounted for Device<T> {
    fn inc_ref(&self) {
        // SAFETY: By the type invariant `vdev.device` is a live device.
        unsafe { bindings::get_device(&raw mut (*self.as_raw()).device) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe { bindings::mpw_helper_vfio_put_device(obj.as_ptr().cast()) };
    }
}

// SAFETY: `T: Send + Sync` (required by `Operations`) and the VFIO core's fields are protected
// by its own locks.
unsafe impl<T: Operations> Send for Device<T> {}
// SAFETY: See above.
unsafe impl<T: Operations> Sync for Device<T> {}

/// A byte range `[offset, offset + size)` of a region (a sparse-mmap area, a BAR's MSI-X
/// table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Start, in bytes from the region start.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Area {
    /// The first byte past the area (saturating).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

/// A `VFIO_DEVICE_GET_REGION_INFO` answer under construction.
///
/// The VFIO core validates `argsz`, copies the result out and lays out the capability chain.
///
/// # Invariants
///
/// `caps` is the VFIO core's capability chain for this call.
pub struct RegionInfo<'a> {
    info: &'a mut bindings::vfio_region_info,
    caps: *mut bindings::vfio_info_cap,
}

impl RegionInfo<'_> {
    /// The region index userspace asked about.
    pub fn index(&self) -> u32 {
        self.info.index
    }

    /// Sets the region's flags (`VFIO_REGION_INFO_FLAG_*`), size and file offset.
    pub fn set(&mut self, flags: u32, size: u64, offset: u64) {
        self.info.flags = flags;
        self.info.size = size;
        self.info.offset = offset;
    }

    /// Adds the MSI-X-mappable capability: the region holds the MSI-X table or PBA and may
    /// be mapped anyway (interrupt remapping keeps the host's vectors safe), as vfio-pci
    /// says of such BARs.
    pub fn add_msix_mappable(&mut self) -> Result {
        // struct vfio_info_cap_header: id u16, version u16, next u32.
        let mut hdr = [0u8; 8];
        hdr[0..2]
            .copy_from_slice(&(bindings::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16).to_ne_bytes());
        hdr[2..4].copy_from_slice(&1u16.to_ne_bytes());
        // SAFETY: By the type invariant `caps` is the live chain; `hdr` is a complete
        // capability of 8 bytes starting with its header, which the core copies.
        to_result(unsafe {
            bindings::vfio_info_add_capability(self.caps, hdr.as_mut_ptr().cast(), hdr.len())
        })
    }

    /// Adds the type capability (`VFIO_REGION_INFO_CAP_TYPE`): what a device-specific region
    /// is, by `VFIO_REGION_TYPE_*` and subtype.
    pub fn add_type(&mut self, kind: u32, subtype: u32) -> Result {
        // struct vfio_region_info_cap_type: header (id u16, version u16, next u32), type u32,
        // subtype u32.
        let mut cap = [0u8; 16];
        cap[0..2].copy_from_slice(&(bindings::VFIO_REGION_INFO_CAP_TYPE as u16).to_ne_bytes());
        cap[2..4].copy_from_slice(&1u16.to_ne_bytes());
        cap[8..12].copy_from_slice(&kind.to_ne_bytes());
        cap[12..16].copy_from_slice(&subtype.to_ne_bytes());
        // SAFETY: By the type invariant `caps` is the live chain; `cap` is a complete
        // capability of 16 bytes starting with its header, which the core copies.
        to_result(unsafe {
            bindings::vfio_info_add_capability(self.caps, cap.as_mut_ptr().cast(), cap.len())
        })
    }

    /// Adds a sparse-mmap capability: only `areas` of the region may be mapped.
    pub fn add_sparse_mmap(&mut self, areas: &[Area]) -> Result {
        let nr = u32::try_from(areas.len()).map_err(|_| EINVAL)?;
        // struct vfio_region_info_cap_sparse_mmap: header (id u16, version u16, next u32),
        // nr_areas u32, reserved u32, then { offset u64, size u64 } per area.
        let mut buf: KVec<u8> = KVec::with_capacity(16 + 16 * areas.len(), GFP_KERNEL)?;
        buf.extend_from_slice(
            &(bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16).to_ne_bytes(),
            GFP_KERNEL,
        )?;
        buf.extend_from_slice(&1u16.to_ne_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&0u32.to_ne_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&nr.to_ne_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&0u32.to_ne_bytes(), GFP_KERNEL)?;
        for a in areas {
            buf.extend_from_slice(&a.offset.to_ne_bytes(), GFP_KERNEL)?;
            buf.extend_from_slice(&a.size.to_ne_bytes(), GFP_KERNEL)?;
        }
        // SAFETY: By the type invariant `caps` is the live chain; `buf` holds a complete
        // capability of `buf.len()` bytes starting with its header (kmalloc memory is
        // suitably aligned), which the core copies.
        to_result(unsafe {
            bindings::vfio_info_add_capability(self.caps, buf.as_mut_ptr().cast(), buf.len())
        })
    }
}

/// A page fault on a mapping set up with [`Device::mmap_faulting`].
///
/// # Invariants
///
/// `vmf` is the live fault being handled.
pub struct Fault {
    vmf: *mut bindings::vm_fault,
    ret: Option<bindings::vm_fault_t>,
}

impl Fault {
    /// The file offset of the faulting page (page aligned).
    pub fn offset(&self) -> u64 {
        // SAFETY: By the type invariant `vmf` is live.
        unsafe { bindings::mpw_helper_vmf_file_offset(self.vmf) }
    }

    /// Maps `page` at the faulting address.
    pub fn insert(&mut self, page: crate::pci_io::BarPage) {
        // SAFETY: By the type invariant `vmf` is live; the page is inside a BAR (`BarPage`
        // invariant), which the VMA's flags (`VM_PFNMAP | VM_IO`, uncached) are set up for.
        self.ret = Some(unsafe { bindings::mpw_helper_vmf_insert_pfn(self.vmf, page.pfn()) });
    }
}

/// Reads the `N` native-endian `u32`s at user address `arg`: the head of an ioctl's struct.
pub fn read_user_u32s<const N: usize>(arg: usize) -> Result<[u32; N]> {
    let mut reader = UserSlice::new(UserPtr::from_addr(arg), 4 * N).reader();
    let mut words = [0u32; N];
    for w in words.iter_mut() {
        let mut b = [0u8; 4];
        reader.read_slice(&mut b)?;
        *w = u32::from_ne_bytes(b);
    }
    Ok(words)
}

/// Writes `words` as native-endian `u32`s to user address `arg`.
pub fn write_user_u32s<const N: usize>(arg: usize, words: &[u32; N]) -> Result {
    let mut writer = UserSlice::new(UserPtr::from_addr(arg), 4 * N).writer();
    for w in words {
        writer.write_slice(&w.to_ne_bytes())?;
    }
    Ok(())
}

/// What a `VFIO_DEVICE_SET_IRQS` request does to its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqAction {
    /// Mask the vectors.
    Mask,
    /// Unmask the vectors.
    Unmask,
    /// Set (`IrqData::EventFds`) or fire (`None`, `Bools`) the vectors' triggers.
    Trigger,
}

/// The payload of a `VFIO_DEVICE_SET_IRQS` request: one entry per vector of the range.
#[derive(Debug)]
pub enum IrqData {
    /// No data: the action applies to every vector of the range.
    None,
    /// The action applies to the vectors whose entry is `true`.
    Bools(KVec<bool>),
    /// A file descriptor per vector (`-1`: none).
    EventFds(KVec<i32>),
}

/// A `VFIO_DEVICE_SET_IRQS` request, validated by the VFIO core's
/// `vfio_set_irqs_validate_and_prepare`.
///
/// # Invariants
///
/// `start + count` is at most the vector count of `index` the device reported, `index` is
/// below the device's index count, and `data` has `count` entries unless it is `None`.
#[derive(Debug)]
pub struct IrqSet {
    index: u32,
    start: u32,
    count: u32,
    action: IrqAction,
    data: IrqData,
}

impl IrqSet {
    /// The interrupt index (`VFIO_PCI_*_IRQ_INDEX`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The vectors `start..end` the request applies to (empty is meaningful: e.g. "disable"
    /// for MSI and MSI-X). `end` does not overflow, and is at most the index's vector count.
    pub fn range(&self) -> core::ops::Range<u32> {
        // INVARIANT (used): validated by the core, `start + count` does not overflow.
        self.start..self.start + self.count
    }

    /// What to do.
    pub fn action(&self) -> IrqAction {
        self.action
    }

    /// With what: one entry per vector of [`IrqSet::range`], unless `None`.
    pub fn data(&self) -> &IrqData {
        &self.data
    }

    /// Reads the request at user address `arg` and validates it for a device with
    /// `num_indexes` interrupt indexes, of which index `i` has `vectors(i)` vectors.
    ///
    /// Fails with `EINVAL` for a malformed request (size, index, range, flags, data type), with
    /// `ENOTTY` for an action that is not exactly one of mask, unmask and trigger (as
    /// vfio-pci does), and with `EFAULT` if the user memory cannot be read.
    pub fn from_user(arg: usize, num_indexes: u32, vectors: impl Fn(u32) -> u32) -> Result<Self> {
        const MINSZ: usize = mem::offset_of!(bindings::vfio_irq_set, data);
        // `argsz`, `flags`, `index`, `start`, `count`.
        const { assert!(MINSZ == 5 * 4) };
        let [argsz, flags, index, start, count] = read_user_u32s(arg)?;
        let mut hdr = bindings::vfio_irq_set {
            argsz,
            flags,
            index,
            start,
            count,
            ..Default::default()
        };
        let num_irqs = if hdr.index < num_indexes {
            vectors(hdr.index)
        } else {
            0
        };
        let mut data_size = 0usize;
        // SAFETY: `hdr` and `data_size` are valid for reads and writes; the function only
        // looks at the header fields.
        to_result(unsafe {
            bindings::vfio_set_irqs_validate_and_prepare(
                &mut hdr,
                num_irqs as c_int,
                num_indexes as c_int,
                &mut data_size,
            )
        })?;
        let action = match hdr.flags & bindings::VFIO_IRQ_SET_ACTION_TYPE_MASK {
            bindings::VFIO_IRQ_SET_ACTION_MASK => IrqAction::Mask,
            bindings::VFIO_IRQ_SET_ACTION_UNMASK => IrqAction::Unmask,
            bindings::VFIO_IRQ_SET_ACTION_TRIGGER => IrqAction::Trigger,
            _ => return Err(ENOTTY),
        };
        let count = hdr.count as usize;
        let mut raw = KVec::new();
        if data_size > 0 {
            let data = arg.checked_add(MINSZ).ok_or(EFAULT)?;
            UserSlice::new(UserPtr::from_addr(data), data_size)
                .read_all(&mut raw, GFP_KERNEL_ACCOUNT)?;
        }
        let data = match hdr.flags & bindings::VFIO_IRQ_SET_DATA_TYPE_MASK {
            bindings::VFIO_IRQ_SET_DATA_BOOL => {
                let mut v = KVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
                for byte in raw.iter() {
                    v.push(*byte != 0, GFP_KERNEL_ACCOUNT)?;
                }
                IrqData::Bools(v)
            }
            bindings::VFIO_IRQ_SET_DATA_EVENTFD => {
                let mut v = KVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
                for fd in raw.chunks_exact(4) {
                    v.push(
                        i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]),
                        GFP_KERNEL_ACCOUNT,
                    )?;
                }
                IrqData::EventFds(v)
            }
            // The core accepted exactly one data type: this is DATA_NONE.
            _ => IrqData::None,
        };
        // INVARIANT: Validated by the core above; the data has `data_size / size` entries,
        // which is `count`.
        Ok(Self {
            index: hdr.index,
            start: hdr.start,
            count: hdr.count,
            action,
            data,
        })
    }
}

/// The operations of a VFIO device, the Rust side of `struct vfio_device_ops`.
///
/// Methods not implemented leave their C callback empty, except the iommufd ones, which
/// default to the VFIO core's emulated-IOMMU helpers.
#[vtable]
pub trait Operations: Sized + Send + Sync + 'static {
    /// The ops `name`.
    const NAME: &'static CStr;

    /// First open of the device (serialised by the VFIO core).
    fn open_device(_dev: &Device<Self>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Last close of the device.
    fn close_device(_dev: &Device<Self>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `read(2)`/`pread(2)` of `buf.len()` bytes at `pos`; returns the bytes read.
    fn read(
        _dev: &Device<Self>,
        _buf: &mut UserSliceWriter,
        _len: usize,
        _pos: u64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `write(2)`/`pwrite(2)` of `len` bytes at `pos`; returns the bytes written.
    fn write(
        _dev: &Device<Self>,
        _buf: &mut UserSliceReader,
        _len: usize,
        _pos: u64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Every device ioctl the VFIO core does not handle itself.
    fn ioctl(_dev: &Device<Self>, _cmd: u32, _arg: usize) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `mmap(2)` of the device fd; `vma` covers `[vma.start(), vma.end())` at file offset
    /// [`vma_offset`]`(vma)`.
    fn mmap(_dev: &Device<Self>, _vma: &VmaNew) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// A page of a mapping set up with [`Device::mmap_faulting`] was touched: the page at
    /// file offset `fault.offset()` of the device fd. Map a BAR page there with
    /// [`Fault::insert`], under whatever lock also covers [`Device::zap`], so that a
    /// revocation cannot slip between the decision and the mapping. An error, or returning
    /// without inserting, delivers `SIGBUS` to the user. Runs under the mmap lock.
    fn fault(_dev: &Device<Self>, _fault: &mut Fault) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO`: fill `info` for `info.index()`.
    fn region_info(_dev: &Device<Self>, _info: &mut RegionInfo<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device is being unregistered and userspace still has it open (`count`th request).
    fn request(_dev: &Device<Self>, _count: u32) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Userspace binds the device to its iommufd context `ctx` (before the first open on the
    /// iommufd paths, never on the legacy container path); set `out_device_id`.
    fn bind_iommufd(_dev: &Device<Self>, _ctx: &iommufd::Ctx, _out_device_id: &mut u32) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Undoes [`Operations::bind_iommufd`] (after the last close).
    fn unbind_iommufd(_dev: &Device<Self>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Attaches to the IOAS or HWPT `pt_id` of the bound context.
    fn attach_ioas(_dev: &Device<Self>, _pt_id: &mut u32) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Detaches from the IOAS.
    fn detach_ioas(_dev: &Device<Self>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The user unmapped `[iova, iova + length)`: drop every pin and cached translation of
    /// that range before returning. Called for devices that access user memory through the
    /// VFIO core (`vfio_pin_pages`, `vfio_dma_rw`): by the type1 container, and on iommufd
    /// only through the core's emulated binding (the default `bind_iommufd`), not for a
    /// device that implements [`Operations::bind_iommufd`] itself.
    fn dma_unmap(_dev: &Device<Self>, _iova: u64, _length: u64) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `struct vfio_device_ops` of `T`.
struct VTable<T: Operations>(PhantomData<T>);

impl<T: Operations> VTable<T> {
    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>` whose `data` is initialised.
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        // SAFETY: Called once, on the last reference; `data` is initialised (the ops were
        // switched to `VTABLE` only after that), and nothing uses it afterwards.
        unsafe { core::ptr::drop_in_place(&raw mut (*vdev.cast::<Device<T>>()).data) };
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        match T::open_device(dev) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn close_device(vdev: *mut bindings::vfio_device) {
        // SAFETY: By the safety requirements.
        T::close_device(unsafe { Device::<T>::from_raw(vdev) })
    }

    /// Runs a read or write at `*ppos` and advances it by what was transferred.
    ///
    /// # Safety
    ///
    /// `ppos` must be valid for reads and writes.
    unsafe fn at_pos(ppos: *mut bindings::loff_t, op: impl FnOnce(u64) -> Result<usize>) -> isize {
        // SAFETY: `ppos` is valid.
        let pos = unsafe { *ppos };
        let Ok(upos) = u64::try_from(pos) else {
            return EINVAL.to_errno() as isize;
        };
        match op(upos) {
            Ok(n) => {
                // SAFETY: `ppos` is valid; `n` is at most the requested count, which the VFS
                // bounded so that the position cannot overflow.
                unsafe { *ppos = pos + n as bindings::loff_t };
                n as isize
            }
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `ppos` must be valid.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let mut w = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
        // SAFETY: `ppos` is valid.
        unsafe { Self::at_pos(ppos, |pos| T::read(dev, &mut w, count, pos)) }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `ppos` must be valid.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        // SAFETY: `ppos` is valid.
        unsafe { Self::at_pos(ppos, |pos| T::write(dev, &mut r, count, pos)) }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn ioctl(
        vdev: *mut bindings::vfio_device,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        match T::ioctl(dev, cmd, arg) {
            Ok(r) => r as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `info` must be valid.
    unsafe extern "C" fn get_region_info_caps(
        vdev: *mut bindings::vfio_device,
        info: *mut bindings::vfio_region_info,
        caps: *mut bindings::vfio_info_cap,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // INVARIANT: `caps` is the core's chain for this call.
        let mut info = RegionInfo {
            // SAFETY: The VFIO core passes its own, exclusively owned copy of the user's
            // struct.
            info: unsafe { &mut *info },
            caps,
        };
        match T::region_info(dev, &mut info) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `vma` a VMA being set up by mmap.
    unsafe extern "C" fn mmap(
        vdev: *mut bindings::vfio_device,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // SAFETY: The VMA is being set up by `mmap` and is ours until we return.
        let vma = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(dev, vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn request(vdev: *mut bindings::vfio_device, count: c_uint) {
        // SAFETY: By the safety requirements.
        T::request(unsafe { Device::<T>::from_raw(vdev) }, count)
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `ictx` and `out` must be valid.
    unsafe extern "C" fn bind_iommufd(
        vdev: *mut bindings::vfio_device,
        ictx: *mut bindings::iommufd_ctx,
        out: *mut u32,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // SAFETY: The VFIO core holds the context for the duration of the call.
        let ctx = unsafe { iommufd::Ctx::from_raw(ictx) };
        // SAFETY: `out` is valid for writes.
        match T::bind_iommufd(dev, ctx, unsafe { &mut *out }) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn unbind_iommufd(vdev: *mut bindings::vfio_device) {
        // SAFETY: By the safety requirements.
        T::unbind_iommufd(unsafe { Device::<T>::from_raw(vdev) })
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`; `pt_id` must be valid.
    unsafe extern "C" fn attach_ioas(vdev: *mut bindings::vfio_device, pt_id: *mut u32) -> c_int {
        // SAFETY: By the safety requirements.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // SAFETY: `pt_id` is valid for reads and writes.
        match T::attach_ioas(dev, unsafe { &mut *pt_id }) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn detach_ioas(vdev: *mut bindings::vfio_device) {
        // SAFETY: By the safety requirements.
        T::detach_ioas(unsafe { Device::<T>::from_raw(vdev) })
    }

    /// # Safety
    ///
    /// `vdev` must be the `vdev` of a live `Device<T>`.
    unsafe extern "C" fn dma_unmap(vdev: *mut bindings::vfio_device, iova: u64, length: u64) {
        // SAFETY: By the safety requirements.
        T::dma_unmap(unsafe { Device::<T>::from_raw(vdev) }, iova, length)
    }

    /// The fault handler of mappings set up with [`Device::mmap_faulting`].
    ///
    /// # Safety
    ///
    /// `vmf` must be a fault on such a mapping of a `Device<T>`.
    unsafe extern "C" fn vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: `vmf` is a live fault; the VMA's private data is the `Device<T>`
        // (`mmap_faulting`), which its fd keeps alive.
        let dev = unsafe { Device::<T>::from_raw(bindings::mpw_helper_vmf_private(vmf).cast()) };
        // INVARIANT: `vmf` is the live fault.
        let mut fault = Fault { vmf, ret: None };
        match (T::fault(dev, &mut fault), fault.ret) {
            (Ok(()), Some(ret)) => ret,
            _ => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::vm_fault),
        ..pin_init::zeroed()
    };

    /// The ops name as a C pointer (`CStrExt::as_char_ptr` is not `const`).
    #[expect(
        clippy::disallowed_methods,
        reason = "a const context needs CStr::as_ptr"
    )]
    const NAME_PTR: *mut c_char = T::NAME.as_ptr().cast_mut().cast();

    /// Used until the data is initialised: no `release`, so nothing drops it.
    const ALLOC_VTABLE: bindings::vfio_device_ops = bindings::vfio_device_ops {
        name: Self::NAME_PTR,
        bind_iommufd: Some(bindings::vfio_iommufd_emulated_bind),
        unbind_iommufd: Some(bindings::vfio_iommufd_emulated_unbind),
        attach_ioas: Some(bindings::vfio_iommufd_emulated_attach_ioas),
        detach_ioas: Some(bindings::vfio_iommufd_emulated_detach_ioas),
        ..pin_init::zeroed()
    };

    const VTABLE: bindings::vfio_device_ops = bindings::vfio_device_ops {
        name: Self::NAME_PTR,
        release: Some(Self::release),
        bind_iommufd: if T::HAS_BIND_IOMMUFD {
            Some(Self::bind_iommufd)
        } else {
            Some(bindings::vfio_iommufd_emulated_bind)
        },
        unbind_iommufd: if T::HAS_UNBIND_IOMMUFD {
            Some(Self::unbind_iommufd)
        } else {
            Some(bindings::vfio_iommufd_emulated_unbind)
        },
        attach_ioas: if T::HAS_ATTACH_IOAS {
            Some(Self::attach_ioas)
        } else {
            Some(bindings::vfio_iommufd_emulated_attach_ioas)
        },
        detach_ioas: if T::HAS_DETACH_IOAS {
            Some(Self::detach_ioas)
        } else {
            Some(bindings::vfio_iommufd_emulated_detach_ioas)
        },
        open_device: if T::HAS_OPEN_DEVICE {
            Some(Self::open_device)
        } else {
            None
        },
        close_device: if T::HAS_CLOSE_DEVICE {
            Some(Self::close_device)
        } else {
            None
        },
        read: if T::HAS_READ { Some(Self::read) } else { None },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        get_region_info_caps: if T::HAS_REGION_INFO {
            Some(Self::get_region_info_caps)
        } else {
            None
        },
        request: if T::HAS_REQUEST {
            Some(Self::request)
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        dma_unmap: if T::HAS_DMA_UNMAP {
            Some(Self::dma_unmap)
        } else {
            None
        },
        ..pin_init::zeroed()
    };
}

/// The file offset of `vma`'s first page (`vm_pgoff` in bytes).
pub fn vma_offset(vma: &VmaNew) -> u64 {
    // SAFETY: `vma.as_ptr()` is a valid VMA for the duration of the borrow.
    let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff };
    (pgoff as u64) << bindings::PAGE_SHIFT
}

/// A VFIO device made visible to userspace (group node, cdev), as an emulated-IOMMU device.
///
/// Dropping it unregisters the device, which waits until userspace has closed it, calling
/// [`Operations::request`] meanwhile.
pub struct Registration<T: Operations> {
    dev: ARef<Device<T>>,
}

impl<T: Operations> Registration<T> {
    /// Registers `dev` with the VFIO core.
    pub fn new(dev: ARef<Device<T>>) -> Result<Self> {
        // SAFETY: `dev` is a fully initialised VFIO device that is not registered yet.
        to_result(unsafe { bindings::vfio_register_emulated_iommu_dev(dev.as_raw()) })?;
        Ok(Self { dev })
    }

    /// Returns the registered device.
    pub fn device(&self) -> &Device<T> {
        &self.dev
    }
}

impl<T: Operations> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `self.dev` was registered in `new`.
        unsafe { bindings::vfio_unregister_group_dev(self.dev.as_raw()) };
    }
}

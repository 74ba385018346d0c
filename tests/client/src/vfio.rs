// SPDX-License-Identifier: GPL-2.0

//! Minimal raw VFIO uAPI (include/uapi/linux/vfio.h) for the test client.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;

const VFIO_TYPE: u64 = b';' as u64;
const VFIO_BASE: u64 = 100;

/// `_IO(VFIO_TYPE, VFIO_BASE + nr)`.
const fn vfio_io(nr: u64) -> u64 {
    (VFIO_TYPE << 8) | (VFIO_BASE + nr)
}

pub const VFIO_GET_API_VERSION: u64 = vfio_io(0);
pub const VFIO_CHECK_EXTENSION: u64 = vfio_io(1);
pub const VFIO_SET_IOMMU: u64 = vfio_io(2);
pub const VFIO_GROUP_GET_STATUS: u64 = vfio_io(3);
pub const VFIO_GROUP_SET_CONTAINER: u64 = vfio_io(4);
pub const VFIO_GROUP_GET_DEVICE_FD: u64 = vfio_io(6);
pub const VFIO_DEVICE_GET_INFO: u64 = vfio_io(7);
pub const VFIO_DEVICE_RESET: u64 = vfio_io(11);
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 1;
pub const VFIO_DEVICE_GET_REGION_INFO: u64 = vfio_io(8);
pub const VFIO_DEVICE_GET_IRQ_INFO: u64 = vfio_io(9);
pub const VFIO_DEVICE_SET_IRQS: u64 = vfio_io(10);
pub const VFIO_DEVICE_BIND_IOMMUFD: u64 = vfio_io(18);
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: u64 = vfio_io(19);
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: u64 = vfio_io(20);
/// Type1 ioctls, which iommufd also answers on its own fd (drivers/iommu/iommufd/vfio_compat.c).
pub const VFIO_IOMMU_MAP_DMA: u64 = vfio_io(13);
pub const VFIO_IOMMU_UNMAP_DMA: u64 = vfio_io(14);
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;

/// iommufd ioctls share the VFIO type: `_IO(';', 0x80 + n)`.
const fn iommufd_io(nr: u64) -> u64 {
    (VFIO_TYPE << 8) | nr
}
pub const IOMMU_IOAS_ALLOC: u64 = iommufd_io(0x81);
pub const IOMMU_IOAS_MAP: u64 = iommufd_io(0x85);
pub const IOMMU_IOAS_UNMAP: u64 = iommufd_io(0x86);
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

pub const VFIO_API_VERSION: i32 = 0;
pub const VFIO_TYPE1V2_IOMMU: u64 = 3;
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// `struct vfio_region_info` flag: a capability chain follows (`cap_offset`).
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;
/// Region-info capability ID of the sparse-mmap areas (MSIX_MAPPABLE is 3).
pub const VFIO_REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;
pub const VFIO_REGION_INFO_CAP_TYPE: u16 = 2;
pub const VFIO_PCI_NUM_REGIONS: u32 = 9;

/// IRQ indexes of a vfio-pci device.
pub const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
pub const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
pub const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
pub const VFIO_PCI_ERR_IRQ_INDEX: u32 = 3;
pub const VFIO_PCI_REQ_IRQ_INDEX: u32 = 4;

/// `struct vfio_irq_info` flags.
pub const VFIO_IRQ_INFO_EVENTFD: u32 = 1 << 0;
pub const VFIO_IRQ_INFO_MASKABLE: u32 = 1 << 1;
pub const VFIO_IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
pub const VFIO_IRQ_INFO_NORESIZE: u32 = 1 << 3;

/// `struct vfio_irq_set` flags: one data type and one action.
pub const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
pub const VFIO_IRQ_SET_DATA_BOOL: u32 = 1 << 1;
pub const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
pub const VFIO_IRQ_SET_ACTION_MASK: u32 = 1 << 3;
pub const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
pub const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// The header of `struct vfio_irq_set` (argsz, flags, index, start, count): its minsz.
pub const VFIO_IRQ_SET_HDR: usize = 20;

#[repr(C)]
#[derive(Default, Debug)]
pub struct GroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct DeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
    pub cap_offset: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
pub struct IrqInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub count: u32,
}

#[repr(C)]
#[derive(Default)]
struct BindIommufd {
    argsz: u32,
    flags: u32,
    iommufd: i32,
    out_devid: u32,
    token_uuid_ptr: u64,
}

#[repr(C)]
#[derive(Default)]
struct AttachPt {
    argsz: u32,
    flags: u32,
    pt_id: u32,
    pasid: u32,
}

#[repr(C)]
#[derive(Default)]
struct DetachPt {
    argsz: u32,
    flags: u32,
    pasid: u32,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Default)]
struct Type1DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` (without the dirty bitmap).
#[repr(C)]
#[derive(Default)]
struct Type1DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default)]
struct IoasAlloc {
    size: u32,
    flags: u32,
    out_ioas_id: u32,
}

#[repr(C)]
#[derive(Default)]
struct IoasMap {
    size: u32,
    flags: u32,
    ioas_id: u32,
    reserved: u32,
    user_va: u64,
    length: u64,
    iova: u64,
}

#[repr(C)]
#[derive(Default)]
struct IoasUnmap {
    size: u32,
    ioas_id: u32,
    iova: u64,
    length: u64,
}

/// An error that names the operation that failed.
#[derive(Debug)]
pub struct Error {
    pub what: String,
    pub err: io::Error,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.err)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The outcome of a request as the bad-argument cases print it: `ok`, or the errno's name.
pub fn outcome<T>(r: io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match e.raw_os_error() {
            Some(libc::EINVAL) => "EINVAL".into(),
            Some(libc::ENOTTY) => "ENOTTY".into(),
            Some(libc::EFAULT) => "EFAULT".into(),
            Some(libc::EBADF) => "EBADF".into(),
            _ => e.to_string(),
        },
    }
}

/// The errno's name for the errors the new commands report as values (`EIO`, ...), else the
/// error's text.
pub fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EIO) => "EIO",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::ENOTTY) => "ENOTTY",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EFAULT) => "EFAULT",
        Some(libc::ETIMEDOUT) => "ETIMEDOUT",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EOVERFLOW) => "EOVERFLOW",
        Some(libc::EBADF) => "EBADF",
        _ => return e.to_string(),
    };
    name.into()
}

/// `ok` or the errno's name (see `errno_name`).
pub fn result_name<T>(r: &Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(&e.err),
    }
}

pub(crate) fn ctx<T>(what: impl Into<String>, r: io::Result<T>) -> Result<T> {
    r.map_err(|err| Error { what: what.into(), err })
}

/// Runs an ioctl whose argument is an integer or a pointer, returning its non-negative result.
///
/// # Safety
///
/// `arg` must be what `req` expects: a value, or a pointer to a properly sized, writable
/// object that stays valid for the call.
unsafe fn ioctl(fd: &File, req: u64, arg: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: The caller guarantees that `arg` matches `req`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Runs an ioctl that takes a pointer to `T` (an `argsz`-prefixed uAPI struct).
fn ioctl_ptr<T>(fd: &File, req: u64, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T`, which is what every caller's
    // request reads and writes.
    unsafe { ioctl(fd, req, arg as *mut T as libc::c_ulong) }
}

fn open_rw(path: &str) -> Result<File> {
    ctx(format!("open {path}"), OpenOptions::new().read(true).write(true).open(path))
}

/// A type1 container with one group attached, as QEMU's legacy path sets it up.
pub struct Container {
    /// Held open: closing the container detaches the group from it.
    _container: File,
    pub group: File,
    pub group_flags: u32,
}

impl Container {
    /// Opens `/dev/vfio/vfio` and `/dev/vfio/<group>`, attaches the group and sets type1v2.
    pub fn open(group: u32) -> Result<Self> {
        let container = open_rw("/dev/vfio/vfio")?;
        // SAFETY: VFIO_GET_API_VERSION takes no argument.
        let v = ctx("VFIO_GET_API_VERSION", unsafe {
            ioctl(&container, VFIO_GET_API_VERSION, 0)
        })?;
        if v != VFIO_API_VERSION {
            return Err(Error {
                what: format!("VFIO API version {v}, expected {VFIO_API_VERSION}"),
                err: io::Error::from_raw_os_error(libc::EPROTO),
            });
        }
        let group = open_rw(&format!("/dev/vfio/{group}"))?;
        let mut status = GroupStatus { argsz: size_of::<GroupStatus>() as u32, flags: 0 };
        ctx("VFIO_GROUP_GET_STATUS", ioctl_ptr(&group, VFIO_GROUP_GET_STATUS, &mut status))?;
        let mut cfd = container.as_raw_fd();
        ctx("VFIO_GROUP_SET_CONTAINER", ioctl_ptr(&group, VFIO_GROUP_SET_CONTAINER, &mut cfd))?;
        // SAFETY: VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU take an integer.
        let has = ctx("VFIO_CHECK_EXTENSION", unsafe {
            ioctl(&container, VFIO_CHECK_EXTENSION, VFIO_TYPE1V2_IOMMU as _)
        })?;
        if has != 1 {
            return Err(Error {
                what: "container lacks VFIO_TYPE1v2_IOMMU".into(),
                err: io::Error::from_raw_os_error(libc::ENOTSUP),
            });
        }
        // SAFETY: As above.
        ctx("VFIO_SET_IOMMU", unsafe {
            ioctl(&container, VFIO_SET_IOMMU, VFIO_TYPE1V2_IOMMU as _)
        })?;
        Ok(Self { _container: container, group, group_flags: status.flags })
    }

    /// `VFIO_GROUP_GET_DEVICE_FD` for the device called `name` (an mdev UUID or a BDF).
    pub fn device(&self, name: &str) -> Result<Device> {
        device_fd(&self.group, name)
    }
}

/// An iommufd context (`/dev/iommu`) with one IOAS (more with `alloc_ioas`).
pub struct Iommufd {
    pub file: File,
    pub ioas: u32,
}

impl Iommufd {
    pub fn open() -> Result<Self> {
        let file = open_rw("/dev/iommu")?;
        let ioas = Self::alloc_on(&file)?;
        Ok(Self { file, ioas })
    }

    fn alloc_on(file: &File) -> Result<u32> {
        let mut a = IoasAlloc { size: size_of::<IoasAlloc>() as u32, ..Default::default() };
        ctx("IOMMU_IOAS_ALLOC", ioctl_ptr(file, IOMMU_IOAS_ALLOC, &mut a))?;
        Ok(a.out_ioas_id)
    }

    /// Allocates another IOAS in this context; returns its ID.
    pub fn alloc_ioas(&self) -> Result<u32> {
        Self::alloc_on(&self.file)
    }

    /// Maps `len` bytes of this process at `va` to `iova`, readable and writable by DMA.
    pub fn map(&self, va: u64, len: u64, iova: u64) -> Result<()> {
        self.map_in(self.ioas, va, len, iova)
    }

    /// As `map`, into the IOAS `ioas` of this context.
    pub fn map_in(&self, ioas: u32, va: u64, len: u64, iova: u64) -> Result<()> {
        let mut m = IoasMap {
            size: size_of::<IoasMap>() as u32,
            flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id: ioas,
            user_va: va,
            length: len,
            iova,
            ..Default::default()
        };
        ctx(
            format!("IOMMU_IOAS_MAP ioas {ioas} {iova:#x}+{len:#x}"),
            ioctl_ptr(&self.file, IOMMU_IOAS_MAP, &mut m),
        )?;
        Ok(())
    }

    pub fn unmap(&self, iova: u64, len: u64) -> Result<()> {
        let mut u = IoasUnmap {
            size: size_of::<IoasUnmap>() as u32,
            ioas_id: self.ioas,
            iova,
            length: len,
        };
        ctx(format!("IOMMU_IOAS_UNMAP {iova:#x}+{len:#x}"), ioctl_ptr(&self.file, IOMMU_IOAS_UNMAP, &mut u))?;
        Ok(())
    }

    /// The IOAS `ioas` of this context as a DMA mapper.
    pub fn ioas(&self, ioas: u32) -> Ioas<'_> {
        Ioas { ctx: self, id: ioas }
    }
}

/// Something that maps this process's memory for the device's DMA at a fixed IOVA: an IOAS
/// of an iommufd context, or a type1-compatible container.
pub trait DmaMap {
    fn map_dma(&self, va: u64, len: u64, iova: u64) -> Result<()>;
}

impl DmaMap for Iommufd {
    fn map_dma(&self, va: u64, len: u64, iova: u64) -> Result<()> {
        self.map(va, len, iova)
    }
}

/// One IOAS of an iommufd context.
pub struct Ioas<'a> {
    ctx: &'a Iommufd,
    pub id: u32,
}

impl DmaMap for Ioas<'_> {
    fn map_dma(&self, va: u64, len: u64, iova: u64) -> Result<()> {
        self.ctx.map_in(self.id, va, len, iova)
    }
}

/// A VFIO group whose container is an iommufd context (iommufd's type1 compatibility,
/// drivers/iommu/iommufd/vfio_compat.c): the group is attached with
/// `VFIO_GROUP_SET_CONTAINER(<fd of /dev/iommu>)`, and the iommufd fd answers the type1
/// container ioctls. The container is opened by path: `/dev/iommu`, or `/dev/vfio/vfio`
/// after `mpw-vfio-container enable` made that node iommufd's.
pub struct CompatGroup {
    pub group: File,
    pub iommufd: File,
    pub group_flags: u32,
    /// `VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)` on the iommufd fd.
    pub type1v2: i32,
}

impl CompatGroup {
    pub fn open(group: u32, container: &str) -> Result<Self> {
        let group = open_rw(&format!("/dev/vfio/{group}"))?;
        let mut status = GroupStatus { argsz: size_of::<GroupStatus>() as u32, flags: 0 };
        ctx("VFIO_GROUP_GET_STATUS", ioctl_ptr(&group, VFIO_GROUP_GET_STATUS, &mut status))?;
        let iommufd = open_rw(container)?;
        let mut fd = iommufd.as_raw_fd();
        ctx(
            format!("VFIO_GROUP_SET_CONTAINER (fd of {container})"),
            ioctl_ptr(&group, VFIO_GROUP_SET_CONTAINER, &mut fd),
        )?;
        // SAFETY: VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU take an integer.
        let type1v2 = ctx(format!("VFIO_CHECK_EXTENSION on {container}"), unsafe {
            ioctl(&iommufd, VFIO_CHECK_EXTENSION, VFIO_TYPE1V2_IOMMU as _)
        })?;
        // SAFETY: As above.
        ctx(format!("VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU) on {container}"), unsafe {
            ioctl(&iommufd, VFIO_SET_IOMMU, VFIO_TYPE1V2_IOMMU as _)
        })?;
        Ok(Self { group, iommufd, group_flags: status.flags, type1v2 })
    }

    /// `VFIO_GROUP_GET_DEVICE_FD` for the device called `name`.
    pub fn device(&self, name: &str) -> Result<Device> {
        device_fd(&self.group, name)
    }

    /// `VFIO_IOMMU_UNMAP_DMA` on the iommufd fd.
    pub fn unmap_dma(&self, iova: u64, len: u64) -> Result<()> {
        let mut u = Type1DmaUnmap { argsz: size_of::<Type1DmaUnmap>() as u32, flags: 0, iova, size: len };
        ctx(
            format!("VFIO_IOMMU_UNMAP_DMA {iova:#x}+{len:#x}"),
            ioctl_ptr(&self.iommufd, VFIO_IOMMU_UNMAP_DMA, &mut u),
        )?;
        Ok(())
    }
}

impl DmaMap for CompatGroup {
    /// `VFIO_IOMMU_MAP_DMA` on the iommufd fd, readable and writable.
    fn map_dma(&self, va: u64, len: u64, iova: u64) -> Result<()> {
        let mut m = Type1DmaMap {
            argsz: size_of::<Type1DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: va,
            iova,
            size: len,
        };
        ctx(
            format!("VFIO_IOMMU_MAP_DMA {iova:#x}+{len:#x}"),
            ioctl_ptr(&self.iommufd, VFIO_IOMMU_MAP_DMA, &mut m),
        )?;
        Ok(())
    }
}

/// `VFIO_GROUP_GET_DEVICE_FD` on `group` for the device called `name`.
fn device_fd(group: &File, name: &str) -> Result<Device> {
    let cname = std::ffi::CString::new(name).map_err(|_| Error {
        what: format!("device name {name:?}"),
        err: io::Error::from_raw_os_error(libc::EINVAL),
    })?;
    // SAFETY: The argument is a NUL-terminated string that outlives the call.
    let fd = ctx(format!("VFIO_GROUP_GET_DEVICE_FD {name}"), unsafe {
        ioctl(group, VFIO_GROUP_GET_DEVICE_FD, cname.as_ptr() as _)
    })?;
    // SAFETY: The ioctl returned a new file descriptor that nothing else owns.
    Ok(Device { file: unsafe { File::from_raw_fd(fd) } })
}

/// The IOMMU group number of a device from its sysfs directory (`<dev>/iommu_group`).
pub fn sysfs_group(sysfs_dev: &str) -> Result<u32> {
    let link = format!("{sysfs_dev}/iommu_group");
    let target = ctx(format!("readlink {link}"), std::fs::read_link(&link))?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error {
            what: format!("IOMMU group of {sysfs_dev}: {}", target.display()),
            err: io::Error::from_raw_os_error(libc::ENOENT),
        })
}

/// Finds the cdev of a VFIO device from its sysfs directory (`<dev>/vfio-dev/vfioN`), as
/// QEMU does for `sysfsdev=`.
pub fn cdev_path(sysfs_dev: &str) -> Result<String> {
    let dir = format!("{sysfs_dev}/vfio-dev");
    let entries = ctx(format!("read {dir}"), std::fs::read_dir(&dir))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("vfio") {
            return Ok(format!("/dev/vfio/devices/{name}"));
        }
    }
    Err(Error { what: format!("no vfio cdev under {dir}"), err: io::Error::from_raw_os_error(libc::ENOENT) })
}

/// Opens a VFIO device cdev and binds it to `iommufd` (`VFIO_DEVICE_BIND_IOMMUFD`).
pub fn cdev_bind(path: &str, iommufd: &Iommufd) -> Result<Device> {
    let file = open_rw(path)?;
    let mut b = BindIommufd {
        argsz: size_of::<BindIommufd>() as u32,
        iommufd: iommufd.file.as_raw_fd(),
        ..Default::default()
    };
    ctx(format!("VFIO_DEVICE_BIND_IOMMUFD {path}"), ioctl_ptr(&file, VFIO_DEVICE_BIND_IOMMUFD, &mut b))?;
    Ok(Device { file })
}

/// A region's info, the raw answer of `VFIO_DEVICE_GET_REGION_INFO`, and its capability
/// chain as (capability ID, byte offset in the answer).
pub type RegionInfoCaps = (RegionInfo, Vec<u8>, Vec<(u16, usize)>);

/// An open VFIO device file.
pub struct Device {
    pub file: File,
}

impl Device {
    /// VFIO_DEVICE_RESET: a function-level reset of the device.
    pub fn reset(&self) -> Result<()> {
        // SAFETY: VFIO_DEVICE_RESET takes no argument.
        ctx("VFIO_DEVICE_RESET", unsafe { ioctl(&self.file, VFIO_DEVICE_RESET, 0) })?;
        Ok(())
    }

    pub fn info(&self) -> Result<DeviceInfo> {
        let mut info = DeviceInfo { argsz: size_of::<DeviceInfo>() as u32, ..Default::default() };
        ctx("VFIO_DEVICE_GET_INFO", ioctl_ptr(&self.file, VFIO_DEVICE_GET_INFO, &mut info))?;
        Ok(info)
    }

    /// Malformed requests, each with the errno it got (`ok` if it was accepted).
    pub fn bad_arg_cases(&self) -> Vec<(&'static str, String)> {
        use self::outcome as res;
        let mut out = Vec::new();
        let mut info = DeviceInfo { argsz: 8, ..Default::default() };
        out.push(("get_info_small_argsz", res(ioctl_ptr(&self.file, VFIO_DEVICE_GET_INFO, &mut info))));
        let mut r = RegionInfo { argsz: size_of::<RegionInfo>() as u32, index: 9, ..Default::default() };
        out.push(("region_info_index_9", res(ioctl_ptr(&self.file, VFIO_DEVICE_GET_REGION_INFO, &mut r))));
        let mut r = RegionInfo { argsz: 8, index: 0, ..Default::default() };
        out.push(("region_info_small_argsz", res(ioctl_ptr(&self.file, VFIO_DEVICE_GET_REGION_INFO, &mut r))));
        out.push(("irq_info_index_5", res(self.irq_info_raw(16, 5))));
        out.push(("irq_info_small_argsz", res(self.irq_info_raw(8, 0))));
        // SAFETY: An ioctl number VFIO does not define, with no argument.
        out.push(("unknown_ioctl", res(unsafe { ioctl(&self.file, vfio_io(60), 0) })));
        let mut b = [0u8; 4];
        out.push(("read_region_9", res(self.file.read_at(&mut b, 9u64 << 40))));
        out.push(("read_config_past_end", res(self.file.read_at(&mut b, (7u64 << 40) + 0x1000))));
        out.push(("read_absent_bar1", res(self.file.read_at(&mut b, 1u64 << 40))));
        out.push(("write_region_9", res(self.file.write_at(&b, 9u64 << 40))));
        out
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for IRQ index `index`.
    pub fn irq_info(&self, index: u32) -> Result<IrqInfo> {
        ctx(format!("VFIO_DEVICE_GET_IRQ_INFO {index}"), self.irq_info_raw(size_of::<IrqInfo>() as u32, index))
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` with the given `argsz` (the struct is 16 bytes whatever it
    /// says).
    pub fn irq_info_raw(&self, argsz: u32, index: u32) -> io::Result<IrqInfo> {
        let mut info = IrqInfo { argsz, index, ..Default::default() };
        ioctl_ptr(&self.file, VFIO_DEVICE_GET_IRQ_INFO, &mut info)?;
        Ok(info)
    }

    /// `VFIO_DEVICE_SET_IRQS`: `flags` (data type | action) on vectors `start..start + count`
    /// of IRQ index `index`, with `data` (`count` eventfds as `i32`, `count` bools as bytes,
    /// or nothing) after the header.
    pub fn set_irqs(&self, flags: u32, index: u32, start: u32, count: u32, data: &[u8]) -> Result<()> {
        ctx(
            format!("VFIO_DEVICE_SET_IRQS index {index} start {start} count {count} flags {flags:#x}"),
            self.set_irqs_raw((VFIO_IRQ_SET_HDR + data.len()) as u32, flags, index, start, count, data),
        )
    }

    /// `VFIO_DEVICE_SET_IRQS` with the given `argsz`, which need not match the buffer: the
    /// header is always there, followed by all of `data`.
    pub fn set_irqs_raw(&self, argsz: u32, flags: u32, index: u32, start: u32, count: u32, data: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(VFIO_IRQ_SET_HDR + data.len());
        for v in [argsz, flags, index, start, count] {
            buf.extend_from_slice(&v.to_ne_bytes());
        }
        buf.extend_from_slice(data);
        assert!(argsz as usize <= buf.len(), "argsz {argsz} past the end of the buffer");
        // SAFETY: `buf` holds a `struct vfio_irq_set` header and its data, covers the header
        // and the `argsz` bytes the kernel may read, and outlives the call.
        unsafe { ioctl(&self.file, VFIO_DEVICE_SET_IRQS, buf.as_mut_ptr() as libc::c_ulong) }?;
        Ok(())
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` to the IOAS of `iommufd`.
    pub fn attach(&self, iommufd: &Iommufd) -> Result<()> {
        self.attach_pt(iommufd.ioas)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` to the page table (IOAS) `pt_id`: an attach, or a
    /// replacement while attached.
    pub fn attach_pt(&self, pt_id: u32) -> Result<()> {
        let mut a = AttachPt { argsz: size_of::<AttachPt>() as u32, pt_id, ..Default::default() };
        ctx(
            format!("VFIO_DEVICE_ATTACH_IOMMUFD_PT {pt_id}"),
            ioctl_ptr(&self.file, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut a),
        )?;
        Ok(())
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT`: the device's DMA is blocked afterwards.
    pub fn detach(&self) -> Result<()> {
        let mut d = DetachPt { argsz: size_of::<DetachPt>() as u32, ..Default::default() };
        ctx("VFIO_DEVICE_DETACH_IOMMUFD_PT", ioctl_ptr(&self.file, VFIO_DEVICE_DETACH_IOMMUFD_PT, &mut d))?;
        Ok(())
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` with room for a capability chain: the info, the raw
    /// answer, and the chain as (capability ID, byte offset in the answer).
    pub fn region_info_caps(&self, index: u32) -> Result<RegionInfoCaps> {
        const SIZE: usize = 4096;
        let mut buf = vec![0u64; SIZE / 8];
        let b = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` is SIZE bytes and 8-byte aligned; the header fields are written in
        // place.
        unsafe {
            *b.cast::<u32>() = SIZE as u32; // argsz
            *b.add(8).cast::<u32>() = index;
        }
        // SAFETY: `buf` is a writable SIZE-byte buffer, as argsz says, that outlives the call.
        ctx(format!("VFIO_DEVICE_GET_REGION_INFO {index} (caps)"), unsafe {
            ioctl(&self.file, VFIO_DEVICE_GET_REGION_INFO, buf.as_mut_ptr() as libc::c_ulong)
        })?;
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
        let info = RegionInfo {
            argsz: u32_at(0),
            flags: u32_at(4),
            index: u32_at(8),
            cap_offset: u32_at(12),
            size: u64_at(16),
            offset: u64_at(24),
        };
        let mut caps = Vec::new();
        if info.flags & VFIO_REGION_INFO_FLAG_CAPS != 0 {
            let mut next = info.cap_offset as usize;
            // Each header is 8 bytes: a chain of more than SIZE / 8 entries loops.
            while next != 0 && next + 8 <= bytes.len() && caps.len() < SIZE / 8 {
                caps.push((u16::from_le_bytes([bytes[next], bytes[next + 1]]), next));
                next = u32_at(next + 4) as usize;
            }
        }
        Ok((info, bytes, caps))
    }

    /// The sparse-mmap areas of region `index` (`None`: no sparse-mmap capability).
    pub fn sparse_areas(&self, index: u32) -> Result<Option<Vec<(u64, u64)>>> {
        let (_, bytes, caps) = self.region_info_caps(index)?;
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
        for (id, at) in caps {
            if id == VFIO_REGION_INFO_CAP_SPARSE_MMAP && at + 16 <= bytes.len() {
                let n = u32_at(at + 8) as usize;
                let areas = (0..n)
                    .map(|i| at + 16 + 16 * i)
                    .take_while(|&o| o + 16 <= bytes.len())
                    .map(|o| (u64_at(o), u64_at(o + 8)))
                    .collect();
                return Ok(Some(areas));
            }
        }
        Ok(None)
    }

    /// mmaps `len` bytes of region `index` at `offset` (page aligned), shared, read/write.
    pub fn map(&self, index: u32, offset: u64, len: usize) -> Result<Mapping> {
        let r = self.region_info(index)?;
        let what = format!("mmap region {index} at {offset:#x}+{len:#x}");
        // SAFETY: A new shared mapping of the device fd, owned by the returned `Mapping`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                (r.offset + offset) as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error { what, err: io::Error::last_os_error() });
        }
        Ok(Mapping { ptr: p.cast(), len })
    }

    /// mmaps `len` bytes of region `index` at `offset` (page aligned) and reads the
    /// little-endian `u32` at byte `at` of the mapping (`at + 4 <= len`).
    pub fn mmap_read(&self, index: u32, offset: u64, len: usize, at: usize) -> Result<u64> {
        let m = self.map(index, offset, len)?;
        Ok(u64::from(m.read_u32(at)))
    }

    /// Reads a little-endian register of `len` (4 or 8) bytes at `offset` of region `index`.
    pub fn read_reg(&self, index: u32, offset: u64, len: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_region(index, offset, &mut b[..len])?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian register of `len` (2, 4 or 8) bytes.
    pub fn write_reg(&self, index: u32, offset: u64, len: usize, v: u64) -> Result<()> {
        self.write_region(index, offset, &v.to_le_bytes()[..len])
    }

    pub fn region_info(&self, index: u32) -> Result<RegionInfo> {
        let mut info = RegionInfo {
            argsz: size_of::<RegionInfo>() as u32,
            index,
            ..Default::default()
        };
        ctx(
            format!("VFIO_DEVICE_GET_REGION_INFO {index}"),
            ioctl_ptr(&self.file, VFIO_DEVICE_GET_REGION_INFO, &mut info),
        )?;
        Ok(info)
    }

    /// Writes `buf` at `offset` of region `index`.
    pub fn write_region(&self, index: u32, offset: u64, buf: &[u8]) -> Result<()> {
        let r = self.region_info(index)?;
        ctx(
            format!("write region {index} at {offset:#x}"),
            self.file.write_all_at(buf, r.offset + offset),
        )
    }

    /// Reads `buf.len()` bytes at `offset` of region `index`.
    pub fn read_region(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = self.region_info(index)?;
        ctx(
            format!("read region {index} at {offset:#x}"),
            self.file.read_exact_at(buf, r.offset + offset),
        )
    }
}

/// A shared mapping of a device region; unmapped when dropped.
pub struct Mapping {
    ptr: *mut u8,
    pub len: usize,
}

impl Mapping {
    /// The address of byte `at` of the mapping (`at + 4 <= len`).
    pub fn addr(&self, at: usize) -> usize {
        assert!(at + 4 <= self.len, "{at:#x} past the mapping");
        self.ptr as usize + at
    }

    /// A volatile 32-bit read of byte `at` of the mapping (`at + 4 <= len`, 4-byte aligned):
    /// one uncached MMIO read. A revoked mapping of a function that cannot decode raises
    /// SIGBUS here; use `probe::in_child` where that is expected.
    pub fn read_u32(&self, at: usize) -> u32 {
        let a = self.addr(at);
        // SAFETY: `a` is inside our live mapping (checked by `addr`) and 4-byte aligned as
        // the callers pass offsets of registers.
        unsafe { std::ptr::read_volatile(a as *const u32) }
    }

    /// A volatile 32-bit write of `v` to byte `at` of the mapping (`at + 4 <= len`, 4-byte
    /// aligned): one uncached MMIO write.
    pub fn write_u32(&self, at: usize, v: u32) {
        let a = self.addr(at);
        // SAFETY: As in `read_u32`.
        unsafe { std::ptr::write_volatile(a as *mut u32, v) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: Our own mapping, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The sysfs directory of the PCI function behind `sysfs` (an mdev's parent, which is the
/// wrapped function).
pub fn parent_function(sysfs: &str) -> Result<std::path::PathBuf> {
    let real = ctx(format!("realpath {sysfs}"), std::fs::canonicalize(sysfs))?;
    let parent = real.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    if !parent.join("config").exists() {
        return Err(Error {
            what: format!("{} (parent of {sysfs}) is not a PCI function", parent.display()),
            err: io::Error::from_raw_os_error(libc::ENOENT),
        });
    }
    Ok(parent)
}

/// The hardware config space of a PCI function as the kernel reads it (its sysfs `config`).
pub struct HwConfig {
    pub path: String,
}

impl HwConfig {
    pub fn of_dir(dir: &std::path::Path) -> Self {
        Self { path: dir.join("config").to_string_lossy().into_owned() }
    }

    /// The size of the config space the kernel exposes (256 or 4096).
    pub fn size(&self) -> Result<u64> {
        Ok(ctx(format!("stat {}", self.path), std::fs::metadata(&self.path))?.len())
    }

    /// A little-endian register of `len` (1, 2 or 4) bytes at `off`.
    pub fn read(&self, off: u64, len: usize) -> Result<u64> {
        let f = ctx(format!("open {}", self.path), File::open(&self.path))?;
        let mut b = [0u8; 8];
        ctx(format!("read {} at {off:#x}", self.path), f.read_exact_at(&mut b[..len], off))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian register of `len` (1, 2 or 4) bytes at `off`.
    pub fn write(&self, off: u64, len: usize, v: u64) -> Result<()> {
        let f = open_rw(&self.path)?;
        ctx(format!("write {} at {off:#x}", self.path), f.write_all_at(&v.to_le_bytes()[..len], off))
    }
}

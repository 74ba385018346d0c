// SPDX-License-Identifier: GPL-2.0

//! VFIO ioctl numbers, which bindgen cannot translate (they are function-like macros).
//!
//! C header: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h).

use crate::bindings;
use kernel::ioctl::_IO;

/// `_IO(VFIO_TYPE, VFIO_BASE + nr)`, as every VFIO ioctl is defined.
const fn vfio_io(nr: u32) -> u32 {
    _IO(bindings::VFIO_TYPE as u32, bindings::VFIO_BASE + nr)
}

/// Device fd: `struct vfio_device_info`.
pub const VFIO_DEVICE_GET_INFO: u32 = vfio_io(7);
/// Device fd: `struct vfio_region_info`.
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_io(8);
/// Device fd: `struct vfio_irq_info`.
pub const VFIO_DEVICE_GET_IRQ_INFO: u32 = vfio_io(9);
/// Device fd: `struct vfio_irq_set`.
pub const VFIO_DEVICE_SET_IRQS: u32 = vfio_io(10);
/// Device fd: function reset.
pub const VFIO_DEVICE_RESET: u32 = vfio_io(11);
/// Device fd: `struct vfio_pci_hot_reset_info`.
pub const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: u32 = vfio_io(12);
/// Device fd: `struct vfio_pci_hot_reset`.
pub const VFIO_DEVICE_PCI_HOT_RESET: u32 = vfio_io(13);
/// Device fd: `struct vfio_device_ioeventfd`.
pub const VFIO_DEVICE_IOEVENTFD: u32 = vfio_io(16);
/// Device fd: `struct vfio_device_feature`.
pub const VFIO_DEVICE_FEATURE: u32 = vfio_io(17);
/// Device cdev: `struct vfio_device_bind_iommufd`.
pub const VFIO_DEVICE_BIND_IOMMUFD: u32 = vfio_io(18);
/// Device cdev: `struct vfio_device_attach_iommufd_pt`.
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: u32 = vfio_io(19);
/// Device cdev: `struct vfio_device_detach_iommufd_pt`.
pub const VFIO_DEVICE_DETACH_IOMMUFD_PT: u32 = vfio_io(20);
/// Migration fd: `struct vfio_precopy_info`.
pub const VFIO_MIG_GET_PRECOPY_INFO: u32 = vfio_io(21);

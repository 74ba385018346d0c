// SPDX-License-Identifier: GPL-2.0

//! Checks the library's generated bindings and ioctl numbers against the C compiler.
//!
//! Each entry below computes, on the Rust side, a size, alignment, offset or constant that
//! `lib/mdev_pci_wrap/helpers.c` records as the C compiler sees it for the same kernel
//! configuration. Every entry must match, and every C entry must have a Rust counterpart.

use kernel::prelude::*;
use mdev_pci_wrap::{
    bindings,
    layout,
    uapi, //
};

/// A fact computed on the Rust side: its name in `helpers.c` and its value.
type Fact = (&'static str, u64);

macro_rules! size {
    ($t:ident) => {
        (
            concat!("sizeof(", stringify!($t), ")"),
            core::mem::size_of::<bindings::$t>() as u64,
        )
    };
}

macro_rules! align {
    ($t:ident) => {
        (
            concat!("alignof(", stringify!($t), ")"),
            core::mem::align_of::<bindings::$t>() as u64,
        )
    };
}

macro_rules! off {
    ($t:ident, $f:ident) => {
        off!($t, $f, $f)
    };
    // The Rust field name differs from the C one when the C one is a Rust keyword.
    ($t:ident, $f:ident, $cf:ident) => {
        (
            concat!("offsetof(", stringify!($t), ".", stringify!($cf), ")"),
            core::mem::offset_of!(bindings::$t, $f) as u64,
        )
    };
}

macro_rules! val {
    ($m:ident, $v:expr) => {
        (stringify!($m), u64::from($v))
    };
}

/// The Rust side of every fact in `helpers.c`.
fn rust_facts() -> [Fact; 112] {
    [
        size!(vfio_device_info),
        off!(vfio_device_info, flags),
        off!(vfio_device_info, num_regions),
        off!(vfio_device_info, num_irqs),
        off!(vfio_device_info, cap_offset),
        off!(vfio_device_info, pad),
        size!(vfio_region_info),
        off!(vfio_region_info, flags),
        off!(vfio_region_info, index),
        off!(vfio_region_info, cap_offset),
        off!(vfio_region_info, size),
        off!(vfio_region_info, offset),
        size!(vfio_info_cap_header),
        off!(vfio_info_cap_header, id),
        off!(vfio_info_cap_header, version),
        off!(vfio_info_cap_header, next),
        size!(vfio_region_sparse_mmap_area),
        off!(vfio_region_sparse_mmap_area, size),
        size!(vfio_region_info_cap_sparse_mmap),
        off!(vfio_region_info_cap_sparse_mmap, nr_areas),
        off!(vfio_region_info_cap_sparse_mmap, areas),
        size!(vfio_region_info_cap_type),
        off!(vfio_region_info_cap_type, subtype),
        size!(vfio_irq_info),
        off!(vfio_irq_info, flags),
        off!(vfio_irq_info, index),
        off!(vfio_irq_info, count),
        size!(vfio_irq_set),
        off!(vfio_irq_set, flags),
        off!(vfio_irq_set, index),
        off!(vfio_irq_set, start),
        off!(vfio_irq_set, count),
        off!(vfio_irq_set, data),
        size!(vfio_group_status),
        size!(vfio_device_bind_iommufd),
        off!(vfio_device_bind_iommufd, iommufd),
        off!(vfio_device_bind_iommufd, out_devid),
        size!(vfio_device_attach_iommufd_pt),
        off!(vfio_device_attach_iommufd_pt, pt_id),
        size!(vfio_device_detach_iommufd_pt),
        size!(vfio_device_feature),
        off!(vfio_device_feature, data),
        size!(vfio_device_feature_migration),
        size!(vfio_device_feature_mig_state),
        off!(vfio_device_feature_mig_state, data_fd),
        size!(vfio_precopy_info),
        off!(vfio_precopy_info, dirty_bytes),
        size!(vfio_device_feature_dma_logging_control),
        off!(vfio_device_feature_dma_logging_control, ranges),
        size!(vfio_device_feature_dma_logging_range),
        size!(vfio_device_feature_dma_logging_report),
        off!(vfio_device_feature_dma_logging_report, bitmap),
        size!(vfio_iommu_type1_dma_map),
        off!(vfio_iommu_type1_dma_map, iova),
        size!(vfio_iommu_type1_dma_unmap),
        size!(vfio_device),
        align!(vfio_device),
        off!(vfio_device, ops),
        off!(vfio_device, mig_ops),
        off!(vfio_device, log_ops),
        size!(vfio_device_ops),
        off!(vfio_device_ops, name),
        off!(vfio_device_ops, init),
        off!(vfio_device_ops, release),
        off!(vfio_device_ops, bind_iommufd),
        off!(vfio_device_ops, unbind_iommufd),
        off!(vfio_device_ops, attach_ioas),
        off!(vfio_device_ops, detach_ioas),
        off!(vfio_device_ops, open_device),
        off!(vfio_device_ops, close_device),
        off!(vfio_device_ops, read),
        off!(vfio_device_ops, write),
        off!(vfio_device_ops, ioctl),
        off!(vfio_device_ops, mmap),
        off!(vfio_device_ops, request),
        off!(vfio_device_ops, match_, match),
        off!(vfio_device_ops, dma_unmap),
        off!(vfio_device_ops, device_feature),
        size!(vfio_migration_ops),
        size!(vfio_log_ops),
        size!(mdev_driver),
        off!(mdev_driver, device_api),
        off!(mdev_driver, driver),
        size!(mdev_parent),
        off!(mdev_parent, types),
        off!(mdev_parent, nr_types),
        size!(mdev_type),
        off!(mdev_type, sysfs_name),
        off!(mdev_type, pretty_name),
        size!(mdev_device),
        off!(mdev_device, dev),
        off!(mdev_device, type_, type),
        val!(VFIO_DEVICE_GET_INFO, uapi::VFIO_DEVICE_GET_INFO),
        val!(
            VFIO_DEVICE_GET_REGION_INFO,
            uapi::VFIO_DEVICE_GET_REGION_INFO
        ),
        val!(VFIO_DEVICE_GET_IRQ_INFO, uapi::VFIO_DEVICE_GET_IRQ_INFO),
        val!(VFIO_DEVICE_SET_IRQS, uapi::VFIO_DEVICE_SET_IRQS),
        val!(VFIO_DEVICE_RESET, uapi::VFIO_DEVICE_RESET),
        val!(
            VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
            uapi::VFIO_DEVICE_GET_PCI_HOT_RESET_INFO
        ),
        val!(VFIO_DEVICE_PCI_HOT_RESET, uapi::VFIO_DEVICE_PCI_HOT_RESET),
        val!(VFIO_DEVICE_IOEVENTFD, uapi::VFIO_DEVICE_IOEVENTFD),
        val!(VFIO_DEVICE_FEATURE, uapi::VFIO_DEVICE_FEATURE),
        val!(VFIO_DEVICE_BIND_IOMMUFD, uapi::VFIO_DEVICE_BIND_IOMMUFD),
        val!(
            VFIO_DEVICE_ATTACH_IOMMUFD_PT,
            uapi::VFIO_DEVICE_ATTACH_IOMMUFD_PT
        ),
        val!(
            VFIO_DEVICE_DETACH_IOMMUFD_PT,
            uapi::VFIO_DEVICE_DETACH_IOMMUFD_PT
        ),
        val!(VFIO_MIG_GET_PRECOPY_INFO, uapi::VFIO_MIG_GET_PRECOPY_INFO),
        val!(VFIO_PCI_NUM_REGIONS, bindings::VFIO_PCI_NUM_REGIONS),
        val!(VFIO_PCI_NUM_IRQS, bindings::VFIO_PCI_NUM_IRQS),
        val!(
            VFIO_PCI_CONFIG_REGION_INDEX,
            bindings::VFIO_PCI_CONFIG_REGION_INDEX
        ),
        val!(
            VFIO_PCI_ROM_REGION_INDEX,
            bindings::VFIO_PCI_ROM_REGION_INDEX
        ),
        val!(VFIO_PCI_MSIX_IRQ_INDEX, bindings::VFIO_PCI_MSIX_IRQ_INDEX),
        val!(
            VFIO_REGION_INFO_CAP_SPARSE_MMAP,
            bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP
        ),
        val!(
            VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
            bindings::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
        ),
    ]
}

#[kunit_tests(mdev_pci_wrap_layout)]
mod tests {
    use super::*;

    /// Every fact recorded in C has exactly one Rust counterpart, and vice versa.
    #[test]
    fn every_c_fact_has_a_rust_counterpart() {
        let rust = rust_facts();
        let mut unmatched = 0;
        for c in layout::c_facts() {
            let n = rust
                .iter()
                .filter(|(name, _)| name.as_bytes() == c.name.to_bytes())
                .count();
            if n != 1 {
                pr_err!(
                    "C fact {} has {} Rust counterparts, expected 1\n",
                    c.name,
                    n
                );
                unmatched += 1;
            }
        }
        assert_eq!(unmatched, 0);
        assert_eq!(layout::c_fact_count(), rust.len());
    }

    /// The bindgen layouts and the Rust ioctl numbers equal what the C compiler computed.
    #[test]
    fn rust_layouts_and_constants_match_c() {
        let mut mismatches = 0;
        for (name, value) in rust_facts() {
            match layout::c_fact(name) {
                Some(c) if c == value => {}
                Some(c) => {
                    pr_err!("{name}: expected {c} (C), got {value} (Rust)\n");
                    mismatches += 1;
                }
                None => {
                    pr_err!("{name}: expected a C fact, helpers.c has none\n");
                    mismatches += 1;
                }
            }
        }
        assert_eq!(mismatches, 0);
    }

    /// The library's own view of the VFIO PCI ABI constants it is built around.
    #[test]
    fn vfio_pci_abi_constants() {
        // The fixed user ABI: BAR0-5, ROM, config, VGA; INTx, MSI, MSI-X, ERR, REQ.
        assert_eq!(bindings::VFIO_PCI_NUM_REGIONS, 9);
        assert_eq!(bindings::VFIO_PCI_NUM_IRQS, 5);
        assert_eq!(bindings::VFIO_PCI_CONFIG_REGION_INDEX, 7);
        assert_eq!(uapi::VFIO_DEVICE_GET_INFO, 0x3b6b);
    }
}

// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of mdev_pci_wrap; see helpers.h.
 */

#include <linux/export.h>
#include <linux/iommu.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/stddef.h>
#include <linux/vfio.h>
#include <uapi/linux/iommufd.h>
#include <uapi/linux/vfio.h>

#include "helpers.h"

void mpw_helper_vfio_put_device(struct vfio_device *device)
{
	vfio_put_device(device);
}
EXPORT_SYMBOL_GPL(mpw_helper_vfio_put_device);

bool mpw_helper_vfio_device_cdev_opened(struct vfio_device *device)
{
	return vfio_device_cdev_opened(device);
}
EXPORT_SYMBOL_GPL(mpw_helper_vfio_device_cdev_opened);

int mpw_helper_vfio_check_feature(u32 flags, size_t argsz, u32 supported_ops,
				  size_t minsz)
{
	return vfio_check_feature(flags, argsz, supported_ops, minsz);
}
EXPORT_SYMBOL_GPL(mpw_helper_vfio_check_feature);

struct mdev_device *mpw_helper_to_mdev_device(struct device *dev)
{
	return to_mdev_device(dev);
}
EXPORT_SYMBOL_GPL(mpw_helper_to_mdev_device);

struct device *mpw_helper_mdev_dev(struct mdev_device *mdev)
{
	return mdev_dev(mdev);
}
EXPORT_SYMBOL_GPL(mpw_helper_mdev_dev);

struct pci_dev *mpw_helper_pci_physfn(struct pci_dev *dev)
{
	return pci_physfn(dev);
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_physfn);

static int mpw_find_dma_blocker(struct device *member, void *data)
{
	struct device **found = data;

	if (member == found[0] || !member->driver)
		return 0;
	/* A driver that manages DMA itself (vfio-pci, ours) lets userspace own the group. */
	if (dev_is_pci(member) && to_pci_driver(member->driver)->driver_managed_dma)
		return 0;
	found[1] = get_device(member);
	return 1;
}

/**
 * mpw_helper_group_dma_blocker() - a device that keeps @dev's IOMMU group from userspace.
 * @dev: a device in an IOMMU group.
 *
 * Return: another member of @dev's IOMMU group that is bound to a driver using the kernel's
 * DMA API (which iommufd refuses to take the group from), with a reference the caller must
 * put; or NULL if there is none.
 */
struct device *mpw_helper_group_dma_blocker(struct device *dev)
{
	struct device *found[2] = { dev, NULL };
	struct iommu_group *group = iommu_group_get(dev);

	if (!group)
		return NULL;
	iommu_group_for_each_dev(group, found, mpw_find_dma_blocker);
	iommu_group_put(group);
	return found[1];
}
EXPORT_SYMBOL_GPL(mpw_helper_group_dma_blocker);

/**
 * mpw_helper_mmap_bar() - map BAR pages of a PCI function into a user VMA, uncached.
 * @vma: the VMA being set up by mmap; its whole range is mapped.
 * @pdev: the function.
 * @bar: a memory BAR of @pdev.
 * @offset: page-aligned offset in the BAR of the VMA's first page; the caller checked that
 *          the range lies in the BAR and may be mapped.
 *
 * Return: 0 or a negative errno from io_remap_pfn_range().
 */
int mpw_helper_mmap_bar(struct vm_area_struct *vma, struct pci_dev *pdev, int bar,
			u64 offset)
{
	unsigned long pfn = (pci_resource_start(pdev, bar) + offset) >> PAGE_SHIFT;

	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vma->vm_page_prot = pgprot_decrypted(vma->vm_page_prot);
	return io_remap_pfn_range(vma, vma->vm_start, pfn, vma->vm_end - vma->vm_start,
				  vma->vm_page_prot);
}
EXPORT_SYMBOL_GPL(mpw_helper_mmap_bar);

/*
 * The layouts and ioctl numbers the library marshals, as this compiler and this kernel
 * configuration see them. kunit/ asserts the Rust bindings and constants against each entry.
 */
#define SIZE(t) { "sizeof(" #t ")", sizeof(struct t) }
#define ALIGN_OF(t) { "alignof(" #t ")", __alignof__(struct t) }
#define OFF(t, f) { "offsetof(" #t "." #f ")", offsetof(struct t, f) }
#define VAL(m) { #m, (u64)(m) }

static const struct mpw_c_fact mpw_c_fact_table[] = {
	/* uAPI: device, region and irq info, capability chains. */
	SIZE(vfio_device_info), OFF(vfio_device_info, flags),
	OFF(vfio_device_info, num_regions), OFF(vfio_device_info, num_irqs),
	OFF(vfio_device_info, cap_offset), OFF(vfio_device_info, pad),
	SIZE(vfio_region_info), OFF(vfio_region_info, flags), OFF(vfio_region_info, index),
	OFF(vfio_region_info, cap_offset), OFF(vfio_region_info, size),
	OFF(vfio_region_info, offset),
	SIZE(vfio_info_cap_header), OFF(vfio_info_cap_header, id),
	OFF(vfio_info_cap_header, version), OFF(vfio_info_cap_header, next),
	SIZE(vfio_region_sparse_mmap_area), OFF(vfio_region_sparse_mmap_area, size),
	SIZE(vfio_region_info_cap_sparse_mmap), OFF(vfio_region_info_cap_sparse_mmap, nr_areas),
	OFF(vfio_region_info_cap_sparse_mmap, areas),
	SIZE(vfio_region_info_cap_type), OFF(vfio_region_info_cap_type, subtype),
	SIZE(vfio_irq_info), OFF(vfio_irq_info, flags), OFF(vfio_irq_info, index),
	OFF(vfio_irq_info, count),
	SIZE(vfio_irq_set), OFF(vfio_irq_set, flags), OFF(vfio_irq_set, index),
	OFF(vfio_irq_set, start), OFF(vfio_irq_set, count), OFF(vfio_irq_set, data),
	SIZE(vfio_group_status),
	/* uAPI: iommufd binding of a device cdev. */
	SIZE(vfio_device_bind_iommufd), OFF(vfio_device_bind_iommufd, iommufd),
	OFF(vfio_device_bind_iommufd, out_devid),
	SIZE(vfio_device_attach_iommufd_pt), OFF(vfio_device_attach_iommufd_pt, pt_id),
	SIZE(vfio_device_detach_iommufd_pt),
	/* uAPI: device features, migration v2, DMA logging. */
	SIZE(vfio_device_feature), OFF(vfio_device_feature, data),
	SIZE(vfio_device_feature_migration), SIZE(vfio_device_feature_mig_state),
	OFF(vfio_device_feature_mig_state, data_fd),
	SIZE(vfio_precopy_info), OFF(vfio_precopy_info, dirty_bytes),
	SIZE(vfio_device_feature_dma_logging_control),
	OFF(vfio_device_feature_dma_logging_control, ranges),
	SIZE(vfio_device_feature_dma_logging_range),
	SIZE(vfio_device_feature_dma_logging_report),
	OFF(vfio_device_feature_dma_logging_report, bitmap),
	/* uAPI: type1 container. */
	SIZE(vfio_iommu_type1_dma_map), OFF(vfio_iommu_type1_dma_map, iova),
	SIZE(vfio_iommu_type1_dma_unmap),
	/* Kernel objects the library embeds or fills in (configuration dependent). */
	SIZE(vfio_device), ALIGN_OF(vfio_device), OFF(vfio_device, ops),
	OFF(vfio_device, mig_ops), OFF(vfio_device, log_ops),
	SIZE(vfio_device_ops), OFF(vfio_device_ops, name), OFF(vfio_device_ops, init),
	OFF(vfio_device_ops, release), OFF(vfio_device_ops, bind_iommufd),
	OFF(vfio_device_ops, unbind_iommufd), OFF(vfio_device_ops, attach_ioas),
	OFF(vfio_device_ops, detach_ioas), OFF(vfio_device_ops, open_device),
	OFF(vfio_device_ops, close_device), OFF(vfio_device_ops, read),
	OFF(vfio_device_ops, write), OFF(vfio_device_ops, ioctl), OFF(vfio_device_ops, mmap),
	OFF(vfio_device_ops, request), OFF(vfio_device_ops, match),
	OFF(vfio_device_ops, dma_unmap), OFF(vfio_device_ops, device_feature),
	SIZE(vfio_migration_ops), SIZE(vfio_log_ops),
	SIZE(mdev_driver), OFF(mdev_driver, device_api), OFF(mdev_driver, driver),
	SIZE(mdev_parent), OFF(mdev_parent, types), OFF(mdev_parent, nr_types),
	SIZE(mdev_type), OFF(mdev_type, sysfs_name), OFF(mdev_type, pretty_name),
	SIZE(mdev_device), OFF(mdev_device, dev), OFF(mdev_device, type),
	/* ioctl numbers the library dispatches on. */
	VAL(VFIO_DEVICE_GET_INFO), VAL(VFIO_DEVICE_GET_REGION_INFO),
	VAL(VFIO_DEVICE_GET_IRQ_INFO), VAL(VFIO_DEVICE_SET_IRQS), VAL(VFIO_DEVICE_RESET),
	VAL(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO), VAL(VFIO_DEVICE_PCI_HOT_RESET),
	VAL(VFIO_DEVICE_IOEVENTFD), VAL(VFIO_DEVICE_FEATURE), VAL(VFIO_DEVICE_BIND_IOMMUFD),
	VAL(VFIO_DEVICE_ATTACH_IOMMUFD_PT), VAL(VFIO_DEVICE_DETACH_IOMMUFD_PT),
	VAL(VFIO_MIG_GET_PRECOPY_INFO),
	/* Fixed ABI constants. */
	VAL(VFIO_PCI_NUM_REGIONS), VAL(VFIO_PCI_NUM_IRQS), VAL(VFIO_PCI_CONFIG_REGION_INDEX),
	VAL(VFIO_PCI_ROM_REGION_INDEX), VAL(VFIO_PCI_MSIX_IRQ_INDEX),
	VAL(VFIO_REGION_INFO_CAP_SPARSE_MMAP),
};

#undef SIZE
#undef ALIGN_OF
#undef OFF
#undef VAL

const struct mpw_c_fact *mpw_c_facts(size_t *count)
{
	*count = ARRAY_SIZE(mpw_c_fact_table);
	return mpw_c_fact_table;
}

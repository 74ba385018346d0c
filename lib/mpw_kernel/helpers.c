// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of mdev_pci_wrap; see helpers.h.
 */

#include <linux/export.h>
#include <linux/iommu.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/pm_runtime.h>
#include <linux/ratelimit.h>
#include <linux/slab.h>
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

/*
 * One limit for every message userspace can trigger (bad requests, failed binds): ten
 * per five seconds, as printk_ratelimit() but our own state.
 */
static DEFINE_RATELIMIT_STATE(mpw_user_ratelimit, 5 * HZ, 10);

bool mpw_helper_user_ratelimit(void)
{
	return __ratelimit(&mpw_user_ratelimit);
}
EXPORT_SYMBOL_GPL(mpw_helper_user_ratelimit);

bool mpw_helper_pci_is_virtfn(struct pci_dev *pdev)
{
	return pdev->is_virtfn;
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_is_virtfn);

bool mpw_helper_pci_no_command_memory(struct pci_dev *pdev)
{
	return pdev->no_command_memory;
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_no_command_memory);

bool mpw_helper_pci_irq_vectors_in_use(struct pci_dev *pdev)
{
	return pdev->msi_enabled || pdev->msix_enabled;
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_irq_vectors_in_use);

u8 mpw_helper_pci_hdr_type(struct pci_dev *pdev)
{
	return pdev->hdr_type;
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_hdr_type);

/**
 * mpw_helper_set_power_state() - vfio-pci's vfio_pci_set_power_state(), for a caller that
 * holds its own memory lock and revoked the BAR mappings before a state above D0.
 * @pdev: the function.
 * @state: the new state (PCI_D0 .. PCI_D3hot).
 * @pm_save: where the config space is kept across D3hot for a function that loses it
 *           (no No_Soft_Reset): saved on the way down, restored and freed on the way up.
 *
 * Return: 0 or a negative errno from pci_set_power_state().
 */
int mpw_helper_set_power_state(struct pci_dev *pdev, int state,
			       struct pci_saved_state **pm_save)
{
	bool needs_pm_restore = false, needs_save = false, needs_restore = false;
	u16 pmcsr;
	int ret;

	if (pdev->pm_cap) {
		pci_read_config_word(pdev, pdev->pm_cap + PCI_PM_CTRL, &pmcsr);
		needs_pm_restore = !(pmcsr & PCI_PM_CTRL_NO_SOFT_RESET);
	}
	if (needs_pm_restore) {
		if (pdev->current_state < PCI_D3hot && state >= PCI_D3hot) {
			pci_save_state(pdev);
			needs_save = true;
		}
		if (pdev->current_state >= PCI_D3hot && state <= PCI_D0)
			needs_restore = true;
	}
	ret = pci_set_power_state(pdev, (pci_power_t)state);
	if (!ret) {
		if (needs_save && pdev->current_state >= PCI_D3hot) {
			kfree(*pm_save);
			*pm_save = pci_store_saved_state(pdev);
		} else if (needs_restore) {
			pci_load_and_free_saved_state(pdev, pm_save);
			pci_restore_state(pdev);
		}
	}
	return ret;
}
EXPORT_SYMBOL_GPL(mpw_helper_set_power_state);

int mpw_helper_pm_runtime_get(struct device *dev)
{
	return pm_runtime_resume_and_get(dev);
}
EXPORT_SYMBOL_GPL(mpw_helper_pm_runtime_get);

void mpw_helper_pm_runtime_put(struct device *dev)
{
	pm_runtime_put(dev);
}
EXPORT_SYMBOL_GPL(mpw_helper_pm_runtime_put);

int mpw_helper_pci_current_state(struct pci_dev *pdev)
{
	return pdev->current_state;
}
EXPORT_SYMBOL_GPL(mpw_helper_pci_current_state);

/**
 * mpw_helper_vma_setup_io() - make @vma a fault-based, uncached mapping of device memory.
 * @vma: the VMA being set up by mmap.
 * @ops: its operations (a fault handler inserting PFNs).
 * @private: the handler's data.
 *
 * The flags and page protection are those io_remap_pfn_range() would set, as vfio-pci
 * sets them for its fault-based BAR mappings.
 */
void mpw_helper_vma_setup_io(struct vm_area_struct *vma,
			     const struct vm_operations_struct *ops, void *private)
{
	vma->vm_private_data = private;
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vma->vm_page_prot = pgprot_decrypted(vma->vm_page_prot);
	vm_flags_set(vma, VM_ALLOW_ANY_UNCACHED | VM_IO | VM_PFNMAP |
			  VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = ops;
}
EXPORT_SYMBOL_GPL(mpw_helper_vma_setup_io);

void *mpw_helper_vmf_private(struct vm_fault *vmf)
{
	return vmf->vma->vm_private_data;
}
EXPORT_SYMBOL_GPL(mpw_helper_vmf_private);

/* The file offset of the faulting page. */
u64 mpw_helper_vmf_file_offset(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;

	return ((u64)vma->vm_pgoff << PAGE_SHIFT) +
	       ((vmf->address & PAGE_MASK) - vma->vm_start);
}
EXPORT_SYMBOL_GPL(mpw_helper_vmf_file_offset);

vm_fault_t mpw_helper_vmf_insert_pfn(struct vm_fault *vmf, unsigned long pfn)
{
	return vmf_insert_pfn(vmf->vma, vmf->address & PAGE_MASK, pfn);
}
EXPORT_SYMBOL_GPL(mpw_helper_vmf_insert_pfn);

/**
 * mpw_helper_vfio_zap() - revoke every user mapping of a VFIO device's file range.
 * @vdev: a registered VFIO device (its fds share the inode's address space).
 * @start: file offset.
 * @len: length.
 */
void mpw_helper_vfio_zap(struct vfio_device *vdev, u64 start, u64 len)
{
	if (vdev->inode)
		unmap_mapping_range(vdev->inode->i_mapping, start, len, true);
}
EXPORT_SYMBOL_GPL(mpw_helper_vfio_zap);

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
	VAL(VFIO_REGION_INFO_CAP_SPARSE_MMAP), VAL(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE),
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

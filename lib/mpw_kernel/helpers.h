/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of mdev_pci_wrap: out-of-line wrappers for the static inline functions and
 * macros of the vfio/mdev/PCI headers that Rust cannot call, and the C compiler's view of
 * the layouts the library marshals (checked by the KUnit suite).
 *
 * Every helper is exported: generic library code is instantiated in the dependent modules.
 */
#ifndef MDEV_PCI_WRAP_HELPERS_H
#define MDEV_PCI_WRAP_HELPERS_H

#include <linux/pci.h>
#include <linux/types.h>

struct device;
struct mdev_device;
struct pci_dev;
struct vfio_device;

void mpw_helper_vfio_put_device(struct vfio_device *device);
bool mpw_helper_vfio_device_cdev_opened(struct vfio_device *device);
int mpw_helper_vfio_check_feature(u32 flags, size_t argsz, u32 supported_ops,
				  size_t minsz);
struct mdev_device *mpw_helper_to_mdev_device(struct device *dev);
struct device *mpw_helper_mdev_dev(struct mdev_device *mdev);
struct pci_dev *mpw_helper_pci_physfn(struct pci_dev *dev);
struct device *mpw_helper_group_dma_blocker(struct device *dev);
bool mpw_helper_user_ratelimit(void);
bool mpw_helper_pci_is_virtfn(struct pci_dev *pdev);
bool mpw_helper_pci_no_command_memory(struct pci_dev *pdev);
bool mpw_helper_pci_irq_vectors_in_use(struct pci_dev *pdev);
u8 mpw_helper_pci_hdr_type(struct pci_dev *pdev);
int mpw_helper_pci_current_state(struct pci_dev *pdev);
int mpw_helper_pm_runtime_get(struct device *dev);
void mpw_helper_pm_runtime_put(struct device *dev);
int mpw_helper_set_power_state(struct pci_dev *pdev, int state,
			       struct pci_saved_state **pm_save);
struct vm_area_struct;
struct vm_operations_struct;
struct vm_fault;
void mpw_helper_vma_setup_io(struct vm_area_struct *vma,
			     const struct vm_operations_struct *ops, void *private);
void *mpw_helper_vmf_private(struct vm_fault *vmf);
u64 mpw_helper_vmf_file_offset(struct vm_fault *vmf);
unsigned int mpw_helper_vmf_insert_pfn(struct vm_fault *vmf, unsigned long pfn);
void mpw_helper_vfio_zap(struct vfio_device *vdev, u64 start, u64 len);

/**
 * struct mpw_c_fact - one number about a C type or macro, as the C compiler computes it.
 * @name: "sizeof(T)", "alignof(T)", "offsetof(T.field)" or a macro name.
 * @value: its value.
 */
struct mpw_c_fact {
	const char *name;
	u64 value;
};

const struct mpw_c_fact *mpw_c_facts(size_t *count);

#endif /* MDEV_PCI_WRAP_HELPERS_H */

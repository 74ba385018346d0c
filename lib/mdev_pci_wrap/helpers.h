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
struct vm_area_struct;
int mpw_helper_mmap_bar(struct vm_area_struct *vma, struct pci_dev *pdev, int bar,
			u64 offset);

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

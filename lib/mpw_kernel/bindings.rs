// SPDX-License-Identifier: GPL-2.0

//! Raw bindings for the vfio, mdev and iommufd headers, generated at build time.
//!
//! C headers: [`include/linux/vfio.h`](srctree/include/linux/vfio.h),
//! [`include/linux/mdev.h`](srctree/include/linux/mdev.h),
//! [`include/linux/iommufd.h`](srctree/include/linux/iommufd.h),
//! [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h).
//!
//! Kbuild runs bindgen with the kernel's own parameters and this module's C flags over
//! `bindings_helper.h`, generating only the items declared in those headers (and in
//! `helpers.h`). Every other type (`device`, `pci_dev`, `file`, ...) is the very same type as in
//! [`kernel::bindings`], which is glob-imported here.
//!
//! These are for the safe abstractions of this crate and for this project's test crate only:
//! vendor drivers must not use them.

#![allow(
    dead_code,
    clippy::all,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]

pub use kernel::bindings::*;
use kernel::ffi;
use pin_init::MaybeZeroable;

include!(concat!(env!("MPW_GENERATED"), "/bindings_generated.rs"));

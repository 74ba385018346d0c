// SPDX-License-Identifier: GPL-2.0

//! The C compiler's view of the structures and constants this library marshals.
//!
//! `helpers.c` records, for the kernel configuration being built against, the size,
//! alignment and field offsets of the vfio/mdev structures and the values of the ioctl
//! numbers and ABI constants that the library uses. The KUnit suite asserts the Rust
//! bindings and constants against these facts, so a layout mismatch between bindgen's output
//! and the C compiler fails the tests instead of corrupting memory at run time.

use crate::bindings;
use kernel::str::{
    CStr,
    CStrExt, //
};

/// One number about a C type or macro, as computed by the C compiler.
#[derive(Clone, Copy)]
pub struct CFact {
    /// `sizeof(T)`, `alignof(T)`, `offsetof(T.field)` or a macro name.
    pub name: &'static CStr,
    /// The value the C compiler computed.
    pub value: u64,
}

/// Returns the table recorded by the C helpers.
fn table() -> &'static [bindings::mpw_c_fact] {
    let mut count = 0usize;
    // SAFETY: `mpw_c_facts` only writes the table length to `count`, a valid `usize`.
    let table = unsafe { bindings::mpw_c_facts(&mut count) };
    // SAFETY: `mpw_c_facts` returns a static, never modified array of `count` initialised
    // entries.
    unsafe { core::slice::from_raw_parts(table, count) }
}

/// Returns every fact recorded by the C helpers, in table order.
pub fn c_facts() -> impl Iterator<Item = CFact> {
    table().iter().map(|fact| CFact {
        // SAFETY: Each `name` is a string literal in `helpers.c`: NUL-terminated, static and
        // never modified.
        name: unsafe { CStr::from_char_ptr(fact.name) },
        value: fact.value,
    })
}

/// Returns the number of facts recorded by the C helpers.
pub fn c_fact_count() -> usize {
    table().len()
}

/// Looks up the fact called `name`.
pub fn c_fact(name: &str) -> Option<u64> {
    c_facts()
        .find(|f| f.name.to_bytes() == name.as_bytes())
        .map(|f| f.value)
}

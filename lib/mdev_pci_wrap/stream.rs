// SPDX-License-Identifier: GPL-2.0

//! The migration stream: one versioned, self-describing format for every vendor.
//!
//! The data fd of a saving session reads a stream the library writes ([`StreamWriter`]), and
//! the data fd of a resuming session collects one the library checks and takes apart
//! ([`parse`], and [`check_header`] as soon as the header is in, so that a destination refuses
//! an incompatible source early). The library owns the header and its own sections (the
//! virtual config space, the interrupt configuration); a vendor supplies only its device's
//! state, as one opaque section. Every integer is little endian.
//!
//! The header, [`HEADER_LEN`] bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | [`MAGIC`] |
//! | 8 | 2 | format version, [`VERSION`]: a stream of a newer version is refused |
//! | 10 | 2 | header length, [`HEADER_LEN`] |
//! | 12 | 4 | flags: none is defined, a stream with any set is refused |
//! | 16 | 32 | the vendor driver's name, padded with NULs |
//! | 48 | 32 | the mdev type's name, padded with NULs |
//! | 80 | 8 | the function's vendor, device, subsystem vendor and subsystem IDs |
//! | 88 | 1 | its revision |
//! | 89 | 7 | zero |
//!
//! Then the sections, each an `id: u32`, a `len: u32` and `len` bytes, in increasing order of
//! [`Section`] and each at most once; [`Section::Config`] and [`Section::Irqs`] are always
//! there, [`Section::Device`] when the vendor saves state. Last, [`Section::End`], whose 4
//! bytes are the CRC-32 (`crc32_le`, seeded with `!0`, inverted) of every byte before them.
//! Nothing follows it. A stream is at most [`MAX_LEN`] bytes.

use kernel::{
    fmt,
    prelude::*,
    str::BStr, //
};
use mpw_kernel::crc::crc32_le;

/// The first 8 bytes of every stream.
pub const MAGIC: [u8; 8] = *b"MPWMIGR\n";
/// The format version this library writes, and the newest it reads.
pub const VERSION: u16 = 1;
/// The length of the header.
pub const HEADER_LEN: usize = 96;
/// The longest stream the library writes or takes.
pub const MAX_LEN: usize = 1 << 20;
/// The size of the name fields of the header.
pub const NAME_LEN: usize = 32;

const SECTION_HEADER: usize = 8;

/// A section of the stream, in the order they come.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u32)]
pub enum Section {
    /// The library's virtual config space.
    Config = 1,
    /// The library's interrupt configuration (MSI, MSI-X, INTx as it virtualises them).
    Irqs = 2,
    /// The vendor's device state, opaque to the library.
    Device = 3,
    /// The checksum; the last section.
    End = 0xffff,
}

impl Section {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            1 => Self::Config,
            2 => Self::Irqs,
            3 => Self::Device,
            0xffff => Self::End,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Config => "config space",
            Self::Irqs => "interrupts",
            Self::Device => "device state",
            Self::End => "end",
        }
    }
}

/// The IDs of a function, as the header records them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DeviceIds {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem_device: u16,
    /// Revision ID.
    pub revision: u8,
}

impl fmt::Display for DeviceIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_fmt(fmt!(
            "{:04x}:{:04x} (subsystem {:04x}:{:04x}, revision {:02x})",
            self.vendor,
            self.device,
            self.subsystem_vendor,
            self.subsystem_device,
            self.revision
        ))
    }
}

/// What a stream is of: the vendor driver, the mdev type and the function.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// The vendor driver's name (at most [`NAME_LEN`] bytes).
    pub vendor: &'a str,
    /// The mdev type's name (at most [`NAME_LEN`] bytes).
    pub mdev_type: &'a str,
    /// The function's IDs.
    pub ids: DeviceIds,
}

/// A name field of the header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name([u8; NAME_LEN]);

impl Name {
    fn new(s: &str) -> Option<Self> {
        let mut n = [0; NAME_LEN];
        n.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(Self(n))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        f.write_fmt(fmt!("\"{}\"", BStr::from_bytes(&self.0[..end])))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        <Self as fmt::Display>::fmt(self, f)
    }
}

/// Why a stream is refused: each says what is wrong, for the kernel log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamError {
    /// It ends early: `len` bytes, inside `what`.
    Truncated {
        /// The stream's length.
        len: usize,
        /// What it ends in.
        what: &'static str,
    },
    /// It is longer than [`MAX_LEN`].
    TooLong,
    /// It does not start with [`MAGIC`].
    Magic,
    /// It is of a newer format version.
    Version(u16),
    /// Its header length is not the version's.
    HeaderLen(u16),
    /// It has flags set, or non-zero reserved bytes.
    Flags(u32),
    /// It is of another vendor driver.
    Vendor(Name),
    /// It is of another mdev type.
    Type(Name),
    /// It is of a function with other IDs.
    Ids(DeviceIds),
    /// A section of an unknown id.
    UnknownSection(u32),
    /// A section out of order, or twice: `id` after `after`.
    Order {
        /// The section.
        id: Section,
        /// The section before it.
        after: Section,
    },
    /// A section the library always writes is missing.
    Missing(Section),
    /// The end section's length is not 4.
    EndLen(u32),
    /// The checksum does not match.
    Checksum {
        /// The checksum in the stream.
        stored: u32,
        /// The checksum of its bytes.
        computed: u32,
    },
    /// Bytes after the end section.
    Trailing(usize),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len, what } => f.write_fmt(fmt!(
                "truncated: it ends after {} bytes, in its {}",
                len,
                what
            )),
            Self::TooLong => f.write_fmt(fmt!("longer than {} bytes", MAX_LEN)),
            Self::Magic => f.write_str("not a migration stream of mdev_pci_wrap (bad magic)"),
            Self::Version(v) if v > VERSION => f.write_fmt(fmt!(
                "format version {}, newer than this library's {}",
                v,
                VERSION
            )),
            Self::Version(v) => f.write_fmt(fmt!("format version {}, which does not exist", v)),
            Self::HeaderLen(l) => f.write_fmt(fmt!("header length {}, not {}", l, HEADER_LEN)),
            Self::Flags(x) => f.write_fmt(fmt!(
                "unknown header flags or reserved bytes set ({:#x})",
                x
            )),
            Self::Vendor(n) => f.write_fmt(fmt!("saved by vendor driver {}", n)),
            Self::Type(n) => f.write_fmt(fmt!("saved from an mdev of type {}", n)),
            Self::Ids(ids) => f.write_fmt(fmt!("saved from a function {}", ids)),
            Self::UnknownSection(id) => f.write_fmt(fmt!("unknown section {:#x}", id)),
            Self::Order { id, after } => f.write_fmt(fmt!(
                "section '{}' after section '{}'",
                id.name(),
                after.name()
            )),
            Self::Missing(s) => f.write_fmt(fmt!("no '{}' section", s.name())),
            Self::EndLen(l) => f.write_fmt(fmt!("end section of {} bytes, not 4", l)),
            Self::Checksum { stored, computed } => f.write_fmt(fmt!(
                "checksum {:#010x}, but its bytes give {:#010x} (corrupted)",
                stored,
                computed
            )),
            Self::Trailing(n) => f.write_fmt(fmt!("{} bytes after its end", n)),
        }
    }
}

impl From<StreamError> for Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::TooLong => EFBIG,
            _ => EINVAL,
        }
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The checksum of `bytes`: CRC-32 as the end section holds it.
fn checksum(bytes: &[u8]) -> u32 {
    !crc32_le(!0, bytes)
}

/// Writes a stream: the header at once (what a saving session's data fd gives first, in
/// PRE_COPY), then the sections, then [`StreamWriter::finish`].
pub struct StreamWriter {
    buf: KVec<u8>,
    last: Option<Section>,
}

impl StreamWriter {
    /// A stream of `id`, its header written. `EINVAL` when a name is longer than
    /// [`NAME_LEN`].
    pub fn new(id: &Identity<'_>) -> Result<Self> {
        let vendor = Name::new(id.vendor).ok_or(EINVAL)?;
        let mdev_type = Name::new(id.mdev_type).ok_or(EINVAL)?;
        let mut buf = KVec::with_capacity(HEADER_LEN, GFP_KERNEL)?;
        buf.extend_from_slice(&MAGIC, GFP_KERNEL)?;
        buf.extend_from_slice(&VERSION.to_le_bytes(), GFP_KERNEL)?;
        // HEADER_LEN is 96: `as u16` is lossless.
        buf.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&0u32.to_le_bytes(), GFP_KERNEL)?;
        buf.extend_from_slice(&vendor.0, GFP_KERNEL)?;
        buf.extend_from_slice(&mdev_type.0, GFP_KERNEL)?;
        for v in [
            id.ids.vendor,
            id.ids.device,
            id.ids.subsystem_vendor,
            id.ids.subsystem_device,
        ] {
            buf.extend_from_slice(&v.to_le_bytes(), GFP_KERNEL)?;
        }
        buf.extend_from_slice(&[id.ids.revision, 0, 0, 0, 0, 0, 0, 0], GFP_KERNEL)?;
        Ok(Self { buf, last: None })
    }

    /// Appends section `s` with `data`. `EINVAL` for a section out of order, twice, or
    /// [`Section::End`] (see [`StreamWriter::finish`]); `EFBIG` past [`MAX_LEN`].
    pub fn section(&mut self, s: Section, data: &[u8]) -> Result {
        if s == Section::End || self.last.is_some_and(|l| l >= s) {
            return Err(EINVAL);
        }
        self.append(s, data)
    }

    fn append(&mut self, s: Section, data: &[u8]) -> Result {
        let total = self
            .buf
            .len()
            .checked_add(SECTION_HEADER + data.len())
            .ok_or(EFBIG)?;
        if total + SECTION_HEADER + 4 > MAX_LEN {
            return Err(EFBIG);
        }
        // `data.len()` is below MAX_LEN: `as u32` is lossless.
        self.buf
            .extend_from_slice(&(s as u32).to_le_bytes(), GFP_KERNEL)?;
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes(), GFP_KERNEL)?;
        self.buf.extend_from_slice(data, GFP_KERNEL)?;
        self.last = Some(s);
        Ok(())
    }

    /// Appends the end section with the checksum: the stream is complete.
    pub fn finish(&mut self) -> Result {
        if self.last == Some(Section::End) {
            return Err(EINVAL);
        }
        self.buf
            .extend_from_slice(&(Section::End as u32).to_le_bytes(), GFP_KERNEL)?;
        self.buf
            .extend_from_slice(&4u32.to_le_bytes(), GFP_KERNEL)?;
        let sum = checksum(&self.buf);
        self.buf.extend_from_slice(&sum.to_le_bytes(), GFP_KERNEL)?;
        self.last = Some(Section::End);
        Ok(())
    }

    /// Whether [`StreamWriter::finish`] was called.
    pub fn finished(&self) -> bool {
        self.last == Some(Section::End)
    }

    /// The stream so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Checks the header fields that come before the identity (magic, version, length).
fn check_format(b: &[u8]) -> core::result::Result<(), StreamError> {
    if b.len() < 8 || b[..8] != MAGIC {
        return Err(if b.len() < 8 && MAGIC.starts_with(b) {
            StreamError::Truncated {
                len: b.len(),
                what: "header",
            }
        } else {
            StreamError::Magic
        });
    }
    if b.len() < 12 {
        return Err(StreamError::Truncated {
            len: b.len(),
            what: "header",
        });
    }
    let version = le16(b, 8);
    if version > VERSION || version == 0 {
        return Err(StreamError::Version(version));
    }
    let hlen = le16(b, 10);
    if usize::from(hlen) != HEADER_LEN {
        return Err(StreamError::HeaderLen(hlen));
    }
    if b.len() < HEADER_LEN {
        return Err(StreamError::Truncated {
            len: b.len(),
            what: "header",
        });
    }
    Ok(())
}

/// Checks the rest of a whole header: flags, reserved bytes, and the identity against
/// `expect`.
fn check_identity(b: &[u8], expect: &Identity<'_>) -> core::result::Result<(), StreamError> {
    let flags = le32(b, 12);
    let reserved = b[89..HEADER_LEN]
        .iter()
        .fold(0u32, |a, &x| a | u32::from(x));
    if flags != 0 || reserved != 0 {
        return Err(StreamError::Flags(flags | reserved));
    }
    let mut vendor = Name([0; NAME_LEN]);
    vendor.0.copy_from_slice(&b[16..16 + NAME_LEN]);
    if Name::new(expect.vendor) != Some(vendor) {
        return Err(StreamError::Vendor(vendor));
    }
    let mut mdev_type = Name([0; NAME_LEN]);
    mdev_type.0.copy_from_slice(&b[48..48 + NAME_LEN]);
    if Name::new(expect.mdev_type) != Some(mdev_type) {
        return Err(StreamError::Type(mdev_type));
    }
    let ids = DeviceIds {
        vendor: le16(b, 80),
        device: le16(b, 82),
        subsystem_vendor: le16(b, 84),
        subsystem_device: le16(b, 86),
        revision: b[88],
    };
    if ids != expect.ids {
        return Err(StreamError::Ids(ids));
    }
    Ok(())
}

/// Checks the first bytes of a stream being resumed, as they come in: `Ok(true)` once the
/// whole header is in and is one of `expect`, `Ok(false)` while it is not all in yet (and what
/// there is of it is right), the error as soon as something in it is wrong.
pub fn check_header(b: &[u8], expect: &Identity<'_>) -> core::result::Result<bool, StreamError> {
    match check_format(b) {
        Err(StreamError::Truncated { .. }) => return Ok(false),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    check_identity(b, expect)?;
    Ok(true)
}

/// The parts of a whole stream that was found right.
#[derive(Debug, PartialEq, Eq)]
pub struct Stream<'a> {
    /// The format version it was written in.
    pub version: u16,
    /// The virtual config space.
    pub config: &'a [u8],
    /// The interrupt configuration.
    pub irqs: &'a [u8],
    /// The vendor's device state, if it saved any.
    pub device: Option<&'a [u8]>,
}

/// Checks a whole stream against `expect` and takes it apart: its format, its sections'
/// structure and its checksum first (a corrupted byte is reported as such), then its identity
/// and the sections the library needs.
pub fn parse<'a>(
    b: &'a [u8],
    expect: &Identity<'_>,
) -> core::result::Result<Stream<'a>, StreamError> {
    if b.len() > MAX_LEN {
        return Err(StreamError::TooLong);
    }
    check_format(b)?;
    let mut pos = HEADER_LEN;
    let mut last: Option<Section> = None;
    let (mut config, mut irqs, mut device) = (None, None, None);
    loop {
        if b.len() - pos < SECTION_HEADER {
            return Err(StreamError::Truncated {
                len: b.len(),
                what: match last {
                    Some(s) => s.name(),
                    None => "header",
                },
            });
        }
        let raw = le32(b, pos);
        let len = le32(b, pos + 4);
        let s = Section::from_id(raw).ok_or(StreamError::UnknownSection(raw))?;
        if let Some(after) = last {
            if after >= s {
                return Err(StreamError::Order { id: s, after });
            }
        }
        if s == Section::End && len != 4 {
            return Err(StreamError::EndLen(len));
        }
        let start = pos + SECTION_HEADER;
        // `len` is a u32 and `b` is at most MAX_LEN long: the sum does not overflow.
        let end = start + len as usize;
        if end > b.len() {
            return Err(StreamError::Truncated {
                len: b.len(),
                what: s.name(),
            });
        }
        let data = &b[start..end];
        match s {
            Section::Config => config = Some(data),
            Section::Irqs => irqs = Some(data),
            Section::Device => device = Some(data),
            Section::End => {
                let stored = le32(data, 0);
                let computed = checksum(&b[..start]);
                if stored != computed {
                    return Err(StreamError::Checksum { stored, computed });
                }
                if end != b.len() {
                    return Err(StreamError::Trailing(b.len() - end));
                }
                break;
            }
        }
        last = Some(s);
        pos = end;
    }
    check_identity(b, expect)?;
    Ok(Stream {
        version: le16(b, 8),
        config: config.ok_or(StreamError::Missing(Section::Config))?,
        irqs: irqs.ok_or(StreamError::Missing(Section::Irqs))?,
        device,
    })
}

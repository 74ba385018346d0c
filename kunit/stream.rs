// SPDX-License-Identifier: GPL-2.0

//! The migration stream format (`mdev_pci_wrap::stream`): what is written is read back, and
//! every kind of damage is refused with its own reason.

use kernel::prelude::*;
use mdev_pci_wrap::stream::{
    check_header,
    parse,
    DeviceIds,
    Identity,
    Section,
    StreamError,
    StreamWriter,
    HEADER_LEN,
    MAX_LEN, //
};

const IDS: DeviceIds = DeviceIds {
    vendor: 0x8086,
    device: 0x10ca,
    subsystem_vendor: 0x8086,
    subsystem_device: 0,
    revision: 1,
};

const ID: Identity<'static> = Identity {
    vendor: "ixgbevf_mig",
    mdev_type: "vf-migratable",
    ids: IDS,
};

const CONFIG: &[u8] = &[0x86, 0x80, 0xca, 0x10, 7, 0, 0x10, 0];
const IRQS: &[u8] = &[1, 2, 3];
const DEVICE: &[u8] = &[0xaa; 300];

/// A stream of `id` with the three sections (the device's only if `device`).
fn stream_of(id: &Identity<'_>, device: bool) -> Result<KVec<u8>> {
    let mut w = StreamWriter::new(id)?;
    w.section(Section::Config, CONFIG)?;
    w.section(Section::Irqs, IRQS)?;
    if device {
        w.section(Section::Device, DEVICE)?;
    }
    w.finish()?;
    let mut v = KVec::new();
    v.extend_from_slice(w.bytes(), GFP_KERNEL)?;
    Ok(v)
}

/// The offset of the first byte of section number `n` (0: the first after the header).
fn section_at(b: &[u8], n: usize) -> usize {
    let mut pos = HEADER_LEN;
    for _ in 0..n {
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]);
        pos += 8 + len as usize;
    }
    pos
}

/// Rewrites the checksum of `b` (a stream whose end section is last) after an edit, so that
/// only the edit is wrong.
fn reseal(b: &mut [u8]) {
    let n = b.len();
    let sum = !mdev_pci_wrap::crc::crc32_le(!0, &b[..n - 4]);
    b[n - 4..].copy_from_slice(&sum.to_le_bytes());
}

#[kunit_tests(mdev_pci_wrap_stream)]
mod tests {
    use super::*;

    /// What the writer wrote, the parser gives back, section by section.
    #[test]
    fn round_trip() -> Result {
        let b = stream_of(&ID, true)?;
        let s = parse(&b, &ID).map_err(Error::from)?;
        assert_eq!(s.version, 1);
        assert_eq!(s.config, CONFIG);
        assert_eq!(s.irqs, IRQS);
        assert_eq!(s.device, Some(DEVICE));
        let b = stream_of(&ID, false)?;
        assert_eq!(parse(&b, &ID).map_err(Error::from)?.device, None);
        Ok(())
    }

    /// The header as the table in the module's documentation says: magic, version, length,
    /// names, IDs; and the checksum is the common CRC-32 (that of "123456789" is 0xcbf43926).
    #[test]
    fn layout() -> Result {
        let b = stream_of(&ID, false)?;
        assert_eq!(&b[..8], b"MPWMIGR\n");
        assert_eq!(&b[8..12], &[1, 0, 96, 0]);
        assert_eq!(&b[16..27], b"ixgbevf_mig");
        assert_eq!(b[27], 0);
        assert_eq!(&b[48..61], b"vf-migratable");
        assert_eq!(&b[80..84], &[0x86, 0x80, 0xca, 0x10]);
        assert_eq!(b[88], 1);
        assert_eq!(&b[HEADER_LEN..HEADER_LEN + 8], &[1, 0, 0, 0, 8, 0, 0, 0]);
        assert_eq!(!mdev_pci_wrap::crc::crc32_le(!0, b"123456789"), 0xcbf4_3926);
        Ok(())
    }

    /// Every proper prefix is refused as truncated, and says in which part it ends.
    #[test]
    fn every_truncation() -> Result {
        let b = stream_of(&ID, true)?;
        for len in 0..b.len() {
            let r = parse(&b[..len], &ID);
            let ok = matches!(r, Err(StreamError::Truncated { len: l, .. }) if l == len);
            if !ok {
                pr_err!("prefix of {} bytes: {:?}\n", len, r.map(|_| ()));
            }
            assert!(ok);
        }
        assert!(matches!(
            parse(&b[..HEADER_LEN + 12], &ID),
            Err(StreamError::Truncated {
                what: "config space",
                ..
            })
        ));
        Ok(())
    }

    /// Any single flipped bit is refused (the checksum catches what the structure does not).
    #[test]
    fn every_bit_flip() -> Result {
        let b = stream_of(&ID, false)?;
        let mut c = KVec::new();
        c.extend_from_slice(&b, GFP_KERNEL)?;
        for i in 0..b.len() {
            for bit in 0..8 {
                c[i] ^= 1 << bit;
                let r = parse(&c, &ID);
                if r.is_ok() {
                    pr_err!("byte {} bit {} flipped: accepted\n", i, bit);
                }
                assert!(r.is_err());
                c[i] ^= 1 << bit;
            }
        }
        // A payload byte is the checksum's to find.
        c[section_at(&b, 0) + 8] ^= 0x40;
        assert!(matches!(parse(&c, &ID), Err(StreamError::Checksum { .. })));
        Ok(())
    }

    /// Sections swapped, or one twice, are refused even with a right checksum.
    #[test]
    fn reordered_and_repeated_sections() -> Result {
        let b = stream_of(&ID, true)?;
        let (c0, c1, c2) = (section_at(&b, 0), section_at(&b, 1), section_at(&b, 2));
        // Irqs, then Config, then Device, End.
        let mut r = KVec::new();
        r.extend_from_slice(&b[..c0], GFP_KERNEL)?;
        r.extend_from_slice(&b[c1..c2], GFP_KERNEL)?;
        r.extend_from_slice(&b[c0..c1], GFP_KERNEL)?;
        r.extend_from_slice(&b[c2..], GFP_KERNEL)?;
        reseal(&mut r);
        assert_eq!(
            parse(&r, &ID),
            Err(StreamError::Order {
                id: Section::Config,
                after: Section::Irqs
            })
        );
        // Config twice.
        let mut r = KVec::new();
        r.extend_from_slice(&b[..c1], GFP_KERNEL)?;
        r.extend_from_slice(&b[c0..], GFP_KERNEL)?;
        reseal(&mut r);
        assert!(matches!(parse(&r, &ID), Err(StreamError::Order { .. })));
        // The writer refuses to write them so.
        let mut w = StreamWriter::new(&ID)?;
        w.section(Section::Irqs, IRQS)?;
        assert_eq!(w.section(Section::Config, CONFIG), Err(EINVAL));
        assert_eq!(w.section(Section::Irqs, IRQS), Err(EINVAL));
        assert_eq!(w.section(Section::End, &[0; 4]), Err(EINVAL));
        Ok(())
    }

    /// A stream of another vendor, type or function, or of a newer version, is refused for
    /// that reason, early (the header alone) and whole.
    #[test]
    fn other_identity_and_version() -> Result {
        let other_vendor = Identity {
            vendor: "igbvf_mig",
            ..ID
        };
        let other_type = Identity {
            mdev_type: "vf",
            ..ID
        };
        let other_ids = Identity {
            ids: DeviceIds {
                device: 0x1515,
                ..IDS
            },
            ..ID
        };
        let b = stream_of(&other_vendor, true)?;
        assert!(matches!(
            check_header(&b[..HEADER_LEN], &ID),
            Err(StreamError::Vendor(_))
        ));
        assert!(matches!(parse(&b, &ID), Err(StreamError::Vendor(_))));
        let b = stream_of(&other_type, true)?;
        assert!(matches!(
            check_header(&b[..HEADER_LEN], &ID),
            Err(StreamError::Type(_))
        ));
        assert!(matches!(parse(&b, &ID), Err(StreamError::Type(_))));
        let b = stream_of(&other_ids, true)?;
        let want = StreamError::Ids(other_ids.ids);
        assert_eq!(check_header(&b[..HEADER_LEN], &ID), Err(want));
        assert_eq!(parse(&b, &ID).err(), Some(want));
        let mut b = stream_of(&ID, true)?;
        b[8] = 2;
        reseal(&mut b);
        assert_eq!(check_header(&b, &ID), Err(StreamError::Version(2)));
        assert_eq!(parse(&b, &ID), Err(StreamError::Version(2)));
        b[0] = b'X';
        assert_eq!(parse(&b, &ID), Err(StreamError::Magic));
        Ok(())
    }

    /// The early check waits for the whole header, then says yes or no.
    #[test]
    fn header_as_it_comes_in() -> Result {
        let b = stream_of(&ID, true)?;
        for len in 0..HEADER_LEN {
            assert_eq!(check_header(&b[..len], &ID), Ok(false));
        }
        assert_eq!(check_header(&b[..HEADER_LEN], &ID), Ok(true));
        assert_eq!(check_header(&b, &ID), Ok(true));
        assert_eq!(check_header(b"MPWX", &ID), Err(StreamError::Magic));
        Ok(())
    }

    /// Unknown sections and flags, bytes after the end, and a missing library section are
    /// refused; names longer than the header holds are not written.
    #[test]
    fn other_damage() -> Result {
        let b = stream_of(&ID, true)?;
        let mut c = KVec::new();
        c.extend_from_slice(&b, GFP_KERNEL)?;
        c.extend_from_slice(&[0; 3], GFP_KERNEL)?;
        assert_eq!(parse(&c, &ID), Err(StreamError::Trailing(3)));

        let mut c = KVec::new();
        c.extend_from_slice(&b, GFP_KERNEL)?;
        let s1 = section_at(&b, 1);
        c[s1] = 9;
        reseal(&mut c);
        assert_eq!(parse(&c, &ID), Err(StreamError::UnknownSection(9)));

        let mut c = KVec::new();
        c.extend_from_slice(&b, GFP_KERNEL)?;
        c[12] = 1;
        reseal(&mut c);
        assert_eq!(parse(&c, &ID), Err(StreamError::Flags(1)));

        let mut w = StreamWriter::new(&ID)?;
        w.section(Section::Irqs, IRQS)?;
        w.finish()?;
        assert_eq!(
            parse(w.bytes(), &ID),
            Err(StreamError::Missing(Section::Config))
        );
        assert_eq!(w.finish(), Err(EINVAL));

        let long = Identity {
            mdev_type: "a-type-name-longer-than-32-bytes!",
            ..ID
        };
        assert!(StreamWriter::new(&long).is_err());
        Ok(())
    }

    /// The writer stops at the format's size limit; the parser refuses a longer stream.
    #[test]
    fn size_limit() -> Result {
        let mut w = StreamWriter::new(&ID)?;
        let mut huge = KVec::new();
        huge.extend_from_slice(&[0; 4096], GFP_KERNEL)?;
        while huge.len() < MAX_LEN {
            huge.extend_from_slice(&[0; 4096], GFP_KERNEL)?;
        }
        assert_eq!(w.section(Section::Device, &huge), Err(EFBIG));
        // (A stream of MAX_LEN bytes is looked at: these are not one.)
        assert_eq!(parse(&huge, &ID).err(), Some(StreamError::Magic));
        let mut over = KVec::new();
        over.extend_from_slice(&huge, GFP_KERNEL)?;
        over.push(0, GFP_KERNEL)?;
        assert_eq!(parse(&over, &ID).err(), Some(StreamError::TooLong));
        Ok(())
    }
}

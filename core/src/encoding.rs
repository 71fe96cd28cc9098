//! The size of a value's postcard encoding, computed without writing it: a snapshot's size is
//! known before it is streamed to a file whose header records it; and the pieces of postcard
//! encodings that snapshots are decoded from as they are read, never held whole.

use std::io::{self, Read};

use serde::Serialize;

/// The bytes postcard takes to encode `value`.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    let size = postcard::ser_flavors::Size::default();
    let bytes: usize = postcard::serialize_with_flavor(value, size).expect("sizing cannot fail");
    bytes as u64
}

/// Reads a postcard varint (an unsigned LEB128 of at most 10 bytes) from `reader`.
pub(crate) fn read_varint(reader: &mut dyn Read) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let mut byte = [0u8];
        reader.read_exact(&mut byte)?;
        let bits = u64::from(byte[0] & 0x7f);
        if shift == 63 && bits > 1 {
            break;
        }
        value |= bits << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "a varint of more than 64 bits"))
}

/// Reads a postcard byte string (its length, then its bytes) from `reader`. The buffer grows
/// as the bytes come: a length that lies allocates nothing it does not read.
pub(crate) fn read_byte_string(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let length = read_varint(reader)?;
    let mut bytes = Vec::new();
    reader.take(length).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_byte_strings_read_back_what_postcard_wrote() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let encoded = postcard::to_allocvec(&value).unwrap();
            assert_eq!(read_varint(&mut &encoded[..]).unwrap(), value);
        }
        let too_long = [0xffu8; 11];
        assert!(read_varint(&mut &too_long[..]).is_err());
        let string = postcard::to_allocvec(&serde_bytes_like(b"abc")).unwrap();
        assert_eq!(read_byte_string(&mut &string[..]).unwrap(), b"abc");
        let short = &string[..string.len() - 1];
        assert!(read_byte_string(&mut &short[..]).is_err());
    }

    /// A byte string as `crate::bytes` encodes one.
    fn serde_bytes_like(bytes: &[u8]) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }

    #[test]
    fn the_size_is_that_of_the_encoding() {
        let value = (300u64, vec![7u8; 200], "text");
        let encoded = postcard::to_allocvec(&value).unwrap();
        assert_eq!(encoded_len(&value), encoded.len() as u64);
    }
}

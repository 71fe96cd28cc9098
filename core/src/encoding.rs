//! The size of a value's postcard encoding, computed without writing it: a snapshot's size is
//! known before it is streamed to a file whose header records it.

use serde::Serialize;

/// The bytes postcard takes to encode `value`.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    let size = postcard::ser_flavors::Size::default();
    let bytes: usize = postcard::serialize_with_flavor(value, size).expect("sizing cannot fail");
    bytes as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_is_that_of_the_encoding() {
        let value = (300u64, vec![7u8; 200], "text");
        let encoded = postcard::to_allocvec(&value).unwrap();
        assert_eq!(encoded_len(&value), encoded.len() as u64);
    }
}

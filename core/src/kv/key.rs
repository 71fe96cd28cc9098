//! A key as the store's map holds it: the first key of each bucket of pairs (`pairs`). Keys
//! are compared on every lookup and insert, a dozen times or more each in a store of a
//! million keys: a short key lies in the map's node itself, so those comparisons read memory
//! already at hand and writing it allocates nothing. A longer key is reference counted, so
//! that the nodes a write copies while a snapshot's view is alive copy a pointer, not the key.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use std::sync::Arc;

/// The longest key held inline: what fits beside the length in the space of a shared key's
/// pointer and the enum's tag (24 bytes in all).
const INLINE_BYTES: usize = 22;

/// A key of the store. Ordered and compared as its bytes, whatever its form.
#[derive(Clone)]
pub(crate) enum Key {
    /// Up to `INLINE_BYTES` bytes; `len` of `bytes` are the key.
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    /// A longer key.
    Shared(Arc<[u8]>),
}

const _: () = assert!(size_of::<Key>() == 24, "a key takes no more room than a shared one");
const _: () = assert!(INLINE_BYTES <= u8::MAX as usize, "the inline length fits its byte");

impl Key {
    pub(crate) fn new(key: &[u8]) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_BYTES => {
                let mut bytes = [0; INLINE_BYTES];
                bytes[..key.len()].copy_from_slice(key);
                Key::Inline { len, bytes }
            }
            _ => Key::Shared(Arc::from(key)),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Lookups by `&[u8]` find the key of the same bytes: the orders agree.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_bytes_and_order_whatever_their_length() {
        let lengths = [0, 1, INLINE_BYTES - 1, INLINE_BYTES, INLINE_BYTES + 1, 300];
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for length in lengths {
            keys.push(vec![b'a'; length]);
            keys.push(vec![b'b'; length]);
            keys.push([vec![b'a'; length], vec![0]].concat());
        }
        for key in &keys {
            let held = Key::new(key);
            assert_eq!(held.as_bytes(), &key[..]);
            assert_eq!(matches!(held, Key::Inline { .. }), key.len() <= INLINE_BYTES);
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(Key::new(a).cmp(&Key::new(b)), a.cmp(b), "{a:?} against {b:?}");
                assert_eq!(Key::new(a) == Key::new(b), a == b);
            }
        }
    }
}

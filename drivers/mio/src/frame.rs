//! Frames on the wire: a 4-byte little-endian length, then that many bytes of postcard.
//!
//! The length is checked against a limit before anything is buffered, so a peer that sends
//! garbage (which reads as an absurd length) or a frame that is too large is refused at once
//! instead of making the node allocate.

use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of the length prefix.
pub(crate) const LENGTH_BYTES: usize = 4;

/// Largest frame accepted by default: room for the largest AppendEntries the core sends
/// (1 MiB of entries plus one more entry of at most 1 MiB of value and 4 KiB of key) with
/// ample margin.
pub(crate) const MAX_FRAME_BYTES: usize = 16 << 20;

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The length prefix announces more than the limit.
    TooLarge {
        /// The announced length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding of the expected message.
    Malformed(postcard::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { length, limit } => {
                write!(f, "frame of {length} bytes exceeds the limit of {limit} bytes")
            }
            FrameError::Malformed(error) => write!(f, "malformed frame: {error}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame holding `value` to `out`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_BYTES]);
    let mut body =
        postcard::to_extend(value, std::mem::take(out)).expect("encoding into a Vec cannot fail");
    let length = u32::try_from(body.len() - start - LENGTH_BYTES)
        .expect("no message of this crate comes near 4 GiB");
    body[start..start + LENGTH_BYTES].copy_from_slice(&length.to_le_bytes());
    *out = body;
}

/// Splits one complete frame off the front of `buffer`: `Ok(None)` if more bytes are needed,
/// otherwise the decoded value and the number of bytes it used.
pub(crate) fn decode<T: DeserializeOwned>(
    buffer: &[u8],
    limit: usize,
) -> Result<Option<(T, usize)>, FrameError> {
    let Some(prefix) = buffer.get(..LENGTH_BYTES) else {
        return Ok(None);
    };
    let length = u32::from_le_bytes(prefix.try_into().expect("slice of 4 bytes")) as usize;
    if length > limit {
        return Err(FrameError::TooLarge { length, limit });
    }
    let Some(body) = buffer.get(LENGTH_BYTES..LENGTH_BYTES + length) else {
        return Ok(None);
    };
    let value = postcard::from_bytes(body).map_err(FrameError::Malformed)?;
    Ok(Some((value, LENGTH_BYTES + length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_missing_bytes() {
        let mut out = Vec::new();
        encode_into(&(7u32, String::from("seven")), &mut out);
        encode_into(&(8u32, String::from("eight")), &mut out);
        let first = out.len() / 2;
        assert!(decode::<(u32, String)>(&out[..first - 1], 100).unwrap().is_none());
        let (value, used) = decode::<(u32, String)>(&out, 100).unwrap().unwrap();
        assert_eq!((value, used), ((7, "seven".to_string()), first));
        let (value, _) = decode::<(u32, String)>(&out[used..], 100).unwrap().unwrap();
        assert_eq!(value, (8, "eight".to_string()));
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let garbage = b"GET / HTTP/1.1\r\n\r\n";
        assert!(matches!(decode::<u32>(garbage, 1 << 20), Err(FrameError::TooLarge { .. })));
        let mut out = Vec::new();
        encode_into(&u64::MAX, &mut out);
        assert!(matches!(decode::<bool>(&out, 100), Err(FrameError::Malformed(_))));
    }
}

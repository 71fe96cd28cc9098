//! The multiply-rotate hash of the Rust compiler ("Fx"): weak, but a few cycles per word, and
//! the search hashes a state on every step.

use std::hash::Hasher;

/// Hashes words with one rotate, xor and multiply each. Not for data an adversary controls.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut rest = [0; 8];
        let tail = chunks.remainder();
        rest[..tail.len()].copy_from_slice(tail);
        self.add(u64::from_le_bytes(rest) ^ ((tail.len() as u64) << 59));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{Hash, Hasher};

    use super::FxHasher;

    fn hash(value: impl Hash) -> u64 {
        let mut hasher = FxHasher::default();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn tells_apart_what_a_register_or_a_byte_string_can_hold() {
        assert_ne!(hash(None::<i64>), hash(Some(0_i64)));
        assert_ne!(hash(Some(1_i64)), hash(Some(2_i64)));
        assert_ne!(hash(&b"ab"[..]), hash(&b"ab\0"[..]));
        assert_eq!(hash(Some(3_i64)), hash(Some(3_i64)));
    }
}

//! A fixed-size set of small integers, one bit each.

/// The set of operations of a partition that have been linearized.
#[derive(Clone, Debug)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// An empty set of integers below `len`.
    pub(crate) fn new(len: usize) -> Self {
        BitSet { words: vec![0; len.div_ceil(64)] }
    }

    pub(crate) fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    pub(crate) fn remove(&mut self, index: usize) {
        self.words[index / 64] &= !(1 << (index % 64));
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::BitSet;

    #[test]
    fn inserts_and_removes_across_words() {
        let mut set = BitSet::new(130);
        assert_eq!(set.words(), [0, 0, 0]);
        set.insert(0);
        set.insert(64);
        set.insert(129);
        assert_eq!(set.words(), [1, 1, 2]);
        set.remove(64);
        assert_eq!(set.words(), [1, 0, 2]);
        assert!(set.contains(129) && !set.contains(64) && !set.contains(128));
    }
}

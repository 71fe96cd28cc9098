//! The configurations the search has already reached (Lowe's cache), with subsumption for
//! operations that never returned.
//!
//! A configuration is the set of linearized operations and the model state after them. Its
//! operations are of two kinds: those that returned, which every linearization must contain,
//! and those that never did, which may be left out. Reaching (returned set R, open set O,
//! state s) after having reached (R, O', s) with O' a subset of O cannot lead anywhere new:
//! whatever the first can still do, the second can too, as it has the same obligations and
//! more operations left to use. So configurations are keyed by (R, s), and each key keeps the
//! minimal open sets reached with it (an antichain). Without open operations this is a plain
//! set.

/// An insert-only set of configurations with subsumption, within a bound on its memory.
///
/// Once the next insert would take it past its bound, it stops recording and answers every
/// configuration it does not know as new: the search then goes on without the pruning of what
/// is not recorded, which is slower but exact (the cache only ever saves work).
///
/// Returned sets are stored back to back in one arena of words and states in a vector beside
/// it, so an insert allocates nothing but amortized growth. The table holds key numbers,
/// probed linearly, and keeps each key's hash so that growing never hashes again. Open sets
/// live in a second arena as singly linked lists, one per key.
pub(crate) struct Visited<S> {
    returned_words: usize,
    open_words: usize,
    returned_sets: Vec<u64>,
    states: Vec<S>,
    hashes: Vec<u64>,
    /// Per key, the first node of its list of open sets.
    first_open: Vec<u32>,
    open_sets: Vec<u64>,
    /// Per node, the next node of its list, or `NONE`.
    next_open: Vec<u32>,
    /// 0: empty; otherwise a key number plus one.
    slots: Vec<u32>,
    /// Slot of a hash: its top bits, `64 - shift` of them.
    shift: u32,
    /// The most bytes its vectors may take.
    max_bytes: usize,
    /// Whether an insert was not recorded for want of room.
    full: bool,
}

const NONE: u32 = u32::MAX;
const INITIAL_SLOTS_LOG2: u32 = 10;

impl<S: Eq + Clone> Visited<S> {
    /// An empty set for configurations whose returned and open sets are that many words long,
    /// whose vectors take at most `max_bytes` (past the first table of slots).
    pub(crate) fn new(returned_words: usize, open_words: usize, max_bytes: usize) -> Self {
        Visited {
            returned_words,
            open_words,
            returned_sets: Vec::new(),
            states: Vec::new(),
            hashes: Vec::new(),
            first_open: Vec::new(),
            open_sets: Vec::new(),
            next_open: Vec::new(),
            slots: vec![0; 1 << INITIAL_SLOTS_LOG2],
            shift: 64 - INITIAL_SLOTS_LOG2,
            max_bytes,
            full: false,
        }
    }

    /// Whether some configuration was not recorded for want of room.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Records the configuration unless one that subsumes it is there; returns whether it
    /// recorded it. `hash` must be a function of `returned` and `state` alone.
    pub(crate) fn insert(&mut self, hash: u64, returned: &[u64], open: &[u64], state: &S) -> bool {
        debug_assert_eq!((returned.len(), open.len()), (self.returned_words, self.open_words));
        let mask = self.slots.len() - 1;
        let mut slot = self.slot_of(hash);
        loop {
            match self.slots[slot] {
                0 => break,
                occupied => {
                    let key = occupied as usize - 1;
                    if self.hashes[key] == hash
                        && self.returned_set(key) == returned
                        && self.states[key] == *state
                    {
                        return self.insert_open(key, open);
                    }
                    slot = (slot + 1) & mask;
                }
            }
        }
        if !self.has_room(true) {
            self.full = true;
            return true;
        }
        let key = self.states.len();
        // Memory runs out long before 2^32 configurations.
        self.slots[slot] = u32::try_from(key + 1).expect("fewer than 2^32 configurations");
        self.returned_sets.extend_from_slice(returned);
        self.states.push(state.clone());
        self.hashes.push(hash);
        self.first_open.push(NONE);
        self.insert_open(key, open);
        if 2 * self.states.len() > self.slots.len() {
            self.grow();
        }
        true
    }

    /// Adds `open` to the antichain of `key` unless a subset of it is there, dropping the
    /// supersets it makes redundant.
    fn insert_open(&mut self, key: usize, open: &[u64]) -> bool {
        let mut previous = NONE;
        let mut node = self.first_open[key];
        while node != NONE {
            let known = self.open_set(node);
            if is_subset(known, open) {
                return false;
            }
            let next = self.next_open[node as usize];
            if is_subset(open, known) {
                match previous {
                    NONE => self.first_open[key] = next,
                    previous => self.next_open[previous as usize] = next,
                }
            } else {
                previous = node;
            }
            node = next;
        }
        if !self.has_room(false) {
            self.full = true;
            return true;
        }
        let node = u32::try_from(self.next_open.len()).expect("fewer than 2^32 configurations");
        self.open_sets.extend_from_slice(open);
        self.next_open.push(self.first_open[key]);
        self.first_open[key] = node;
        true
    }

    /// Whether recording one more open set, for a new key if `new_key`, keeps the vectors
    /// within the bound, counting the capacity they would grow to.
    fn has_room(&self, new_key: bool) -> bool {
        let keys = usize::from(new_key);
        let slots = if 2 * (self.states.len() + keys) > self.slots.len() {
            2 * self.slots.len()
        } else {
            self.slots.len()
        };
        let bytes = bytes_after(&self.returned_sets, keys * self.returned_words)
            + bytes_after(&self.states, keys)
            + bytes_after(&self.hashes, keys)
            + bytes_after(&self.first_open, keys)
            + bytes_after(&self.open_sets, self.open_words)
            + bytes_after(&self.next_open, 1)
            + slots * size_of::<u32>();
        bytes <= self.max_bytes
    }

    fn returned_set(&self, key: usize) -> &[u64] {
        &self.returned_sets[key * self.returned_words..(key + 1) * self.returned_words]
    }

    fn open_set(&self, node: u32) -> &[u64] {
        let start = node as usize * self.open_words;
        &self.open_sets[start..start + self.open_words]
    }

    fn slot_of(&self, hash: u64) -> usize {
        // The multiplicative hashes used here mix best into the high bits.
        (hash >> self.shift) as usize
    }

    fn grow(&mut self) {
        self.shift -= 1;
        self.slots = vec![0; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for (key, &hash) in self.hashes.iter().enumerate() {
            let mut slot = (hash >> self.shift) as usize;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            // Below 2^32: checked when the key was inserted.
            self.slots[slot] = key as u32 + 1;
        }
    }
}

/// The bytes `vec` takes once it holds `extra` more items, if it grows by doubling.
fn bytes_after<T>(vec: &Vec<T>, extra: usize) -> usize {
    let needed = vec.len() + extra;
    let capacity =
        if needed <= vec.capacity() { vec.capacity() } else { needed.max(2 * vec.capacity()) };
    capacity * size_of::<T>()
}

fn is_subset(small: &[u64], large: &[u64]) -> bool {
    small.iter().zip(large).all(|(small, large)| small & !large == 0)
}

#[cfg(test)]
mod tests {
    use super::Visited;

    #[test]
    fn remembers_configurations_across_growth_even_when_hashes_collide() {
        let mut visited = Visited::new(2, 0, usize::MAX);
        for round in 0..2 {
            for number in 0..5000_u64 {
                let set = [number, !number];
                // Neighbours share a hash, so lookups must compare sets and states.
                let hash = (number / 2).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                assert_eq!(visited.insert(hash, &set, &[], &(number % 3)), round == 0, "{number}");
            }
        }
        assert!(visited.insert(0, &[0, !0], &[], &1), "same set, other state");
        assert!(visited.insert(0, &[1, !0], &[], &0), "same state, other set");
    }

    #[test]
    fn a_configuration_with_more_open_operations_is_subsumed() {
        let mut visited = Visited::new(1, 1, usize::MAX);
        assert!(visited.insert(7, &[0b1], &[0b0110], &'s'));
        assert!(!visited.insert(7, &[0b1], &[0b0110], &'s'), "the same");
        assert!(!visited.insert(7, &[0b1], &[0b1110], &'s'), "a superset");
        assert!(visited.insert(7, &[0b1], &[0b1001], &'s'), "incomparable");
        assert!(visited.insert(7, &[0b1], &[0b1110], &'t'), "another state");
        assert!(visited.insert(7, &[0b1], &[0b0010], &'s'), "a subset");
        assert!(!visited.insert(7, &[0b1], &[0b0110], &'s'), "a superset of the new subset");
        assert!(!visited.insert(7, &[0b1], &[0b1011], &'s'));
        assert!(visited.insert(7, &[0b1], &[0b0001], &'s'), "incomparable to both");
        assert!(visited.insert(7, &[0b1], &[0b0000], &'s'), "the empty set subsumes all");
        assert!(!visited.insert(7, &[0b1], &[0b1000], &'s'));
        assert!(!visited.is_full());
    }

    #[test]
    fn past_its_bound_it_answers_new_without_recording_but_keeps_what_it_has() {
        // Room for the first table of slots and a few configurations.
        let max_bytes = (4 << 10) + 1024;
        let mut visited = Visited::new(1, 1, max_bytes);
        let mut recorded = 0_u64;
        while !visited.is_full() {
            assert!(visited.insert(recorded, &[recorded], &[0], &0_u8));
            recorded += 1;
        }
        assert!(recorded > 1, "a few configurations fit");
        assert!(visited.insert(recorded + 1, &[recorded + 1], &[0], &0), "new, not recorded");
        assert!(visited.insert(recorded + 1, &[recorded + 1], &[0], &0), "still not recorded");
        assert!(!visited.insert(0, &[0], &[0], &0), "the first is still known");
        assert!(!visited.insert(0, &[0], &[1], &0), "and still subsumes");
    }
}

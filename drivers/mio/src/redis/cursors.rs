//! SCAN cursors. Redis clients expect a cursor to be a number; a raftkv scan resumes at a key.
//! The node keeps the key each cursor stands for, the newest `capacity` of them: a client
//! that comes back with a cursor forgotten since is told so.

use std::collections::BTreeMap;

/// Cursors by number, oldest first.
#[derive(Debug)]
pub(crate) struct Cursors {
    starts: BTreeMap<u64, Vec<u8>>,
    next: u64,
    capacity: usize,
}

impl Cursors {
    /// Room for `capacity` cursors (at least one).
    pub(crate) fn new(capacity: usize) -> Cursors {
        Cursors { starts: BTreeMap::new(), next: 1, capacity: capacity.max(1) }
    }

    /// The key a scan from `cursor` starts at: empty for `0`, `None` for an unknown cursor.
    pub(crate) fn start_of(&self, cursor: &[u8]) -> Option<Vec<u8>> {
        let number: u64 = std::str::from_utf8(cursor).ok()?.parse().ok()?;
        if number == 0 {
            return Some(Vec::new());
        }
        self.starts.get(&number).cloned()
    }

    /// A new cursor for a scan resuming at `start`; the oldest is forgotten past the capacity.
    pub(crate) fn insert(&mut self, start: Vec<u8>) -> String {
        let number = self.next;
        self.next = self.next.checked_add(1).unwrap_or(1);
        self.starts.insert(number, start);
        while self.starts.len() > self.capacity {
            self.starts.pop_first();
        }
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_their_start_until_newer_ones_push_them_out() {
        let mut cursors = Cursors::new(2);
        assert_eq!(cursors.start_of(b"0"), Some(Vec::new()));
        let first = cursors.insert(b"a".to_vec());
        let second = cursors.insert(b"b".to_vec());
        assert_eq!(cursors.start_of(first.as_bytes()), Some(b"a".to_vec()));
        let third = cursors.insert(b"c".to_vec());
        assert_eq!(cursors.start_of(first.as_bytes()), None, "forgotten");
        assert_eq!(cursors.start_of(second.as_bytes()), Some(b"b".to_vec()));
        assert_eq!(cursors.start_of(third.as_bytes()), Some(b"c".to_vec()));
        assert_eq!(cursors.start_of(b"nope"), None);
        assert_eq!(cursors.start_of(b"99"), None);
    }
}

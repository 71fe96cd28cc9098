//! A subset of a partition's operations in call order, from which the search removes an
//! operation when it linearizes it and puts it back when it backtracks, in nested order (last
//! removed, first put back), each in constant time: removed entries keep their links for that
//! (Knuth's dancing links).

pub(crate) struct Pending {
    /// The members by call, and their call times.
    members: Vec<usize>,
    calls: Vec<u64>,
    /// Per operation of the partition, its position among the members, if it is one.
    positions: Vec<Option<u32>>,
    /// Links between positions; position `members.len()` is the head.
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Pending {
    /// The operations of a partition of `len` for which `is_member` holds, given their calls.
    pub(crate) fn new(calls: &[u64], is_member: impl Fn(usize) -> bool) -> Self {
        let mut members: Vec<usize> = (0..calls.len()).filter(|&op| is_member(op)).collect();
        members.sort_unstable_by_key(|&op| (calls[op], op));
        // Positions must fit the links; so many operations would not fit in memory anyway.
        let head = u32::try_from(members.len()).expect("fewer than 2^32 operations");
        let mut positions = vec![None; calls.len()];
        for (position, &op) in (0..head).zip(&members) {
            positions[op] = Some(position);
        }
        Pending {
            calls: members.iter().map(|&op| calls[op]).collect(),
            members,
            positions,
            next: (1..=head).chain([0]).collect(),
            prev: [head].into_iter().chain(0..head).collect(),
        }
    }

    /// Removes `op` if it is a member.
    pub(crate) fn remove(&mut self, op: usize) {
        if let Some(position) = self.positions[op] {
            let (prev, next) = (self.prev[position as usize], self.next[position as usize]);
            self.next[prev as usize] = next;
            self.prev[next as usize] = prev;
        }
    }

    /// Undoes the latest [`Pending::remove`] of a member, which must have been of `op`.
    pub(crate) fn put_back(&mut self, op: usize) {
        if let Some(position) = self.positions[op] {
            let (prev, next) = (self.prev[position as usize], self.next[position as usize]);
            self.next[prev as usize] = position;
            self.prev[next as usize] = position;
        }
    }

    /// The members not removed that were called by `time`, in call order.
    pub(crate) fn called_by(&self, time: u64) -> impl Iterator<Item = usize> + '_ {
        let head = self.members.len();
        let mut position = self.next[head] as usize;
        std::iter::from_fn(move || {
            let current = (position != head && self.calls[position] <= time).then_some(position)?;
            position = self.next[position] as usize;
            Some(self.members[current])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn lists_members_called_by_a_time_and_removes_them_in_nested_order() {
        // Operation 3 is no member.
        let calls = [5, 1, 9, 2, 7];
        let mut pending = Pending::new(&calls, |op| op != 3);
        let called_by = |pending: &Pending, time| pending.called_by(time).collect::<Vec<_>>();
        assert_eq!(called_by(&pending, 100), [1, 0, 4, 2]);
        assert_eq!(called_by(&pending, 6), [1, 0]);
        pending.remove(0);
        pending.remove(3);
        pending.remove(1);
        assert_eq!(called_by(&pending, 100), [4, 2]);
        pending.put_back(1);
        pending.put_back(3);
        assert_eq!(called_by(&pending, 7), [1, 4]);
        pending.put_back(0);
        assert_eq!(called_by(&pending, 100), [1, 0, 4, 2]);
        assert_eq!(Pending::new(&[], |_| true).called_by(0).count(), 0);
    }
}

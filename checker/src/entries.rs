//! The calls and returns of a partition in time order, as a doubly linked list from which the
//! search lifts an operation when it linearizes it and puts it back when it backtracks. The
//! calls before the first return left are those of the operations that may take effect next.

/// Entry numbers: the call of operation `i` is `i`, its return `n + i`; `2n` is the head.
///
/// Operations that never returned have no return entry: they never force the search back.
/// Lifting and putting back must nest (last lifted, first put back), as the removed entries
/// keep their links for that (Knuth's dancing links).
pub(crate) struct Entries {
    ops: usize,
    next: Vec<u32>,
    prev: Vec<u32>,
    returned: Vec<bool>,
}

impl Entries {
    /// Orders the events by time; at equal times calls come first, so an operation that
    /// returned at the instant another was called overlaps it.
    pub(crate) fn new(intervals: &[(u64, Option<u64>)]) -> Self {
        let ops = intervals.len();
        let head = 2 * ops;
        // Entry numbers must fit the links; a partition of 2^31 operations would not fit in
        // memory anyway.
        assert!(u32::try_from(head).is_ok(), "too many operations in one partition");
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(head);
        for (op, &(call, ret)) in intervals.iter().enumerate() {
            order.push((call, false, op));
            if let Some(ret) = ret {
                order.push((ret, true, ops + op));
            }
        }
        order.sort_unstable();
        let mut next = vec![head as u32; head + 1];
        let mut prev = vec![head as u32; head + 1];
        let mut last = head;
        for &(_, _, entry) in &order {
            next[last] = entry as u32;
            prev[entry] = last as u32;
            last = entry;
        }
        next[last] = head as u32;
        prev[head] = last as u32;
        Entries {
            ops,
            next,
            prev,
            returned: intervals.iter().map(|(_, ret)| ret.is_some()).collect(),
        }
    }

    /// The operations whose calls come before the first return left in the list, in the
    /// order of their calls.
    pub(crate) fn calls_before_first_return(&self) -> impl Iterator<Item = usize> + '_ {
        let mut entry = self.next[2 * self.ops] as usize;
        std::iter::from_fn(move || {
            let op = (entry < self.ops).then_some(entry)?;
            entry = self.next[entry] as usize;
            Some(op)
        })
    }

    /// Removes the call and return of `op`.
    pub(crate) fn lift(&mut self, op: usize) {
        self.unlink(op);
        if self.returned[op] {
            self.unlink(self.ops + op);
        }
    }

    /// Undoes the latest [`Entries::lift`], which must have been of `op`.
    pub(crate) fn unlift(&mut self, op: usize) {
        if self.returned[op] {
            self.relink(self.ops + op);
        }
        self.relink(op);
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev as usize] = next;
        self.prev[next as usize] = prev;
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev as usize] = entry as u32;
        self.prev[next as usize] = entry as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(entries: &Entries) -> Vec<usize> {
        entries.calls_before_first_return().collect()
    }

    #[test]
    fn orders_by_time_with_calls_first_and_lifts_in_nested_order() {
        // op 0: [5, 10]; op 1: [10, 12]; op 2: [1, never]; op 3: [13, 14].
        let mut entries = Entries::new(&[(5, Some(10)), (10, Some(12)), (1, None), (13, Some(14))]);
        // Op 1 is called at the instant op 0 returns: they overlap.
        assert_eq!(candidates(&entries), [2, 0, 1]);
        entries.lift(0);
        assert_eq!(candidates(&entries), [2, 1]);
        entries.lift(1);
        assert_eq!(candidates(&entries), [2, 3]);
        entries.lift(2);
        assert_eq!(candidates(&entries), [3]);
        entries.unlift(2);
        entries.unlift(1);
        entries.unlift(0);
        assert_eq!(candidates(&entries), [2, 0, 1]);
    }
}

//! The calls and returns of a partition in time order, as a doubly linked list from which the
//! search lifts an operation when it linearizes it and puts it back when it backtracks.

/// One event of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Call(usize),
    Return(usize),
    /// Past the last event.
    End,
}

/// A cursor into [`Entries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor(u32);

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
        assert!(
            u32::try_from(head).is_ok(),
            "too many operations in one partition"
        );
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

    pub(crate) fn first(&self) -> Cursor {
        Cursor(self.next[2 * self.ops])
    }

    pub(crate) fn next(&self, cursor: Cursor) -> Cursor {
        Cursor(self.next[cursor.0 as usize])
    }

    /// The cursor at the call of `op`.
    pub(crate) fn call_of(op: usize) -> Cursor {
        Cursor(op as u32)
    }

    pub(crate) fn event(&self, cursor: Cursor) -> Event {
        let entry = cursor.0 as usize;
        if entry < self.ops {
            Event::Call(entry)
        } else if entry < 2 * self.ops {
            Event::Return(entry - self.ops)
        } else {
            Event::End
        }
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

    fn events(entries: &Entries) -> Vec<Event> {
        let mut events = Vec::new();
        let mut cursor = entries.first();
        loop {
            let event = entries.event(cursor);
            events.push(event);
            if event == Event::End {
                return events;
            }
            cursor = entries.next(cursor);
        }
    }

    #[test]
    fn orders_by_time_with_calls_first_and_lifts_in_nested_order() {
        use Event::{Call, End, Return};
        // op 0: [5, 10]; op 1: [10, 12]; op 2: [1, never].
        let mut entries = Entries::new(&[(5, Some(10)), (10, Some(12)), (1, None)]);
        let all = vec![Call(2), Call(0), Call(1), Return(0), Return(1), End];
        assert_eq!(events(&entries), all);
        entries.lift(0);
        assert_eq!(events(&entries), [Call(2), Call(1), Return(1), End]);
        entries.lift(2);
        assert_eq!(events(&entries), [Call(1), Return(1), End]);
        entries.unlift(2);
        entries.unlift(0);
        assert_eq!(events(&entries), all);
    }
}

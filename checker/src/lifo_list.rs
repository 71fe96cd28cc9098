//! A list of the numbers `0..len` in order, from which numbers are removed and put back in
//! nested order (last removed, first put back), each in constant time: the removed entries
//! keep their links for that (Knuth's dancing links).

pub(crate) struct LifoList {
    /// `next[len]` and `prev[len]` belong to the head.
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl LifoList {
    pub(crate) fn new(len: usize) -> Self {
        // Numbers must fit the links; so many would not fit in memory anyway.
        let head = u32::try_from(len).expect("fewer than 2^32 numbers");
        LifoList {
            next: (1..=head).chain([0]).collect(),
            prev: [head].into_iter().chain(0..head).collect(),
        }
    }

    pub(crate) fn remove(&mut self, number: usize) {
        let (prev, next) = (self.prev[number], self.next[number]);
        self.next[prev as usize] = next;
        self.prev[next as usize] = prev;
    }

    /// Undoes the latest [`LifoList::remove`], which must have been of `number`.
    pub(crate) fn put_back(&mut self, number: usize) {
        let (prev, next) = (self.prev[number], self.next[number]);
        self.next[prev as usize] = number as u32;
        self.prev[next as usize] = number as u32;
    }

    /// The numbers in the list, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let head = self.next.len() - 1;
        let mut number = self.next[head] as usize;
        std::iter::from_fn(move || {
            let current = (number != head).then_some(number)?;
            number = self.next[number] as usize;
            Some(current)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::LifoList;

    #[test]
    fn removes_and_puts_back_in_nested_order() {
        let mut list = LifoList::new(5);
        assert_eq!(list.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        list.remove(0);
        list.remove(3);
        list.remove(4);
        assert_eq!(list.iter().collect::<Vec<_>>(), [1, 2]);
        list.put_back(4);
        list.put_back(3);
        assert_eq!(list.iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
        list.put_back(0);
        assert_eq!(list.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(LifoList::new(0).iter().count(), 0);
    }
}

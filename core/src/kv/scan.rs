//! Range reads over the ordered map: one page of a scan.

use crate::kv::command::{Scan, ScanPage};
use crate::kv::pairs::Pairs;

/// A page stops once its keys and values weigh this much (it holds at least one key), so
/// that its reply stays well under the default frame limit of 16 MiB.
pub const SCAN_PAGE_BYTES: usize = 4 << 20;

/// The page `scan` reads from `entries`.
pub(crate) fn read_page(entries: &Pairs, scan: &Scan) -> ScanPage {
    // Keys with the prefix start at the prefix itself, so the later of the two bounds the
    // range from below.
    let from = scan.start.as_slice().max(scan.prefix.as_slice());
    let end = scan.end.as_deref();
    if end.is_some_and(|end| end <= from) {
        return ScanPage::default();
    }
    let mut in_range = entries
        .range_from(from)
        .take_while(|(key, _)| end.is_none_or(|end| *key < end) && key.starts_with(&scan.prefix))
        .peekable();
    let mut page = ScanPage::default();
    let mut bytes = 0usize;
    let limit = usize::try_from(scan.limit).unwrap_or(usize::MAX);
    while page.keys.len() < limit && bytes < SCAN_PAGE_BYTES {
        let Some((key, value)) = in_range.next() else {
            break;
        };
        bytes = bytes.saturating_add(key.len());
        page.keys.push(key.to_vec());
        if scan.with_values {
            bytes = bytes.saturating_add(value.len());
            page.values.push(value.to_vec());
        }
    }
    page.next = in_range.peek().map(|(key, _)| key.to_vec());
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(keys: &[&str]) -> Pairs {
        let mut pairs = Pairs::default();
        for key in keys {
            pairs.insert(key.as_bytes(), format!("v-{key}").as_bytes());
        }
        pairs
    }

    fn scan(start: &str, end: Option<&str>, prefix: &str, limit: u32) -> Scan {
        Scan {
            start: start.as_bytes().to_vec(),
            end: end.map(|end| end.as_bytes().to_vec()),
            prefix: prefix.as_bytes().to_vec(),
            limit,
            with_values: false,
        }
    }

    fn texts(keys: &[Vec<u8>]) -> Vec<String> {
        keys.iter().map(|key| String::from_utf8_lossy(key).into_owned()).collect()
    }

    #[test]
    fn pages_follow_key_order_and_the_cursor_resumes_where_the_last_page_stopped() {
        let entries = store(&["b", "a", "d", "c", "e"]);
        let first = read_page(&entries, &scan("", None, "", 2));
        assert_eq!(texts(&first.keys), ["a", "b"]);
        assert_eq!(first.next.as_deref(), Some(&b"c"[..]));
        assert!(first.values.is_empty(), "values were not asked for");
        let second = read_page(&entries, &scan("c", None, "", 2));
        assert_eq!(texts(&second.keys), ["c", "d"]);
        let last = read_page(&entries, &scan("e", None, "", 2));
        assert_eq!(texts(&last.keys), ["e"]);
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_prefix_and_an_end_bound_the_range() {
        let entries = store(&["a", "user:1", "user:2", "user:3", "users", "v"]);
        let users = read_page(&entries, &scan("", None, "user:", 10));
        assert_eq!(texts(&users.keys), ["user:1", "user:2", "user:3"]);
        assert_eq!(users.next, None, "the key past the prefix is not a next page");
        let bounded = read_page(&entries, &scan("b", Some("user:3"), "", 10));
        assert_eq!(texts(&bounded.keys), ["user:1", "user:2"]);
        assert_eq!(read_page(&entries, &scan("x", Some("c"), "", 10)), ScanPage::default());
        let after = read_page(&entries, &scan("user:2", None, "user:", 10));
        assert_eq!(texts(&after.keys), ["user:2", "user:3"], "start inside the prefix");
    }

    #[test]
    fn values_come_with_their_keys_and_a_page_stops_at_its_byte_budget() {
        let entries = store(&["k1", "k2"]);
        let mut with_values = scan("", None, "", 10);
        with_values.with_values = true;
        let page = read_page(&entries, &with_values);
        assert_eq!(page.values, [b"v-k1".to_vec(), b"v-k2".to_vec()]);
        let mut big = Pairs::default();
        for i in 0..3u8 {
            big.insert(&[i], &vec![0; SCAN_PAGE_BYTES / 2 + 1]);
        }
        let page = read_page(&big, &with_values);
        assert_eq!(page.keys.len(), 2, "the second value crosses the budget");
        assert_eq!(page.next, Some(vec![2]));
    }
}

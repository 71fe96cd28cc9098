//! The rules of the key-value operations whose effect depends on what a key holds, shared by
//! the plain specification (`spec`) and the generator of linearizable histories (`generate`).

use raftkv_checker::PutCondition;

/// What an increment by `delta` leaves on a key holding `current`: `None` (refused) when the
/// value is not a counter or the sum overflows.
pub(crate) fn incremented(current: Option<&String>, delta: i64) -> Option<i64> {
    match current {
        None => Some(delta),
        Some(text) => counter(text).and_then(|old| old.checked_add(delta)),
    }
}

/// Whether a put with `condition` writes, the key holding a value (`present`) or not.
pub(crate) fn put_if_writes(condition: PutCondition, present: bool) -> bool {
    match condition {
        PutCondition::Always => true,
        PutCondition::IfMissing => !present,
        PutCondition::IfPresent => present,
    }
}

/// The value as a counter: a decimal integer written as Rust writes it.
fn counter(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|value| value.to_string() == text)
}

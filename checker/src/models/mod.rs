//! The sequential specifications histories are judged against.

pub mod kv;
pub mod register;

/// How a compare-and-set outcome reads in messages.
fn cas_outcome_word(swapped: Option<bool>) -> &'static str {
    match swapped {
        None => "?",
        Some(true) => "ok",
        Some(false) => "fail",
    }
}

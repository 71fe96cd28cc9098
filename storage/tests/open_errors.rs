//! A data directory that cannot be used is refused with the operation that failed.

mod common;

use raftkv_storage::{RealFs, Storage};

#[test]
fn a_data_path_that_is_a_file_is_refused_naming_the_listing_that_failed() {
    let dir = common::TempDir::new();
    std::fs::write(&dir.0, b"not a directory").expect("a file where the directory should be");
    let error = Storage::open(RealFs, &dir.0, &common::options(1 << 20)).expect_err("refused");
    // Taken for a missing directory, it would fail later, creating it, with a less telling
    // message.
    assert!(error.to_string().starts_with("cannot list"), "{error}");
    let source = std::error::Error::source(&error).expect("the system's error is its source");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
    std::fs::remove_file(&dir.0).expect("removed");
}

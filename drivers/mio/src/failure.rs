//! How a command of the command line failed, which decides its exit status.

/// How a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A definite negative answer (no such key, no swap); already reported.
    No,
    /// An error, with its message.
    Error(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Error(message)
    }
}

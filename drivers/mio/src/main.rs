//! The `raftkv` binary: see `raftkv --help`.

fn main() -> std::process::ExitCode {
    raftkv::cli::main()
}

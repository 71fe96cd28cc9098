//! `raftkv list`: the keys in order, with their values, read page by page.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use clap::Args;
use raftkv_core::kv::Scan;

use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;

/// Keys a page asks for; the store also ends a page at `SCAN_PAGE_BYTES`.
const PAGE_KEYS: u32 = 1_000;

/// What `raftkv list` prints.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys that begin with P.
    #[arg(long, value_name = "P", default_value = "")]
    prefix: OsString,
    /// Start at key K (inclusive) rather than at the first key.
    #[arg(long, value_name = "K", default_value = "")]
    start: OsString,
    /// Print at most N keys (default: all of them).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// One JSON object per key, {"key": ..., "value": ...} (`value_hex` for a value that is
    /// not UTF-8), instead of `KEY<tab>VALUE` lines (the bytes as they are).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Prints the keys `args` asks for, in order. Each page is a linearizable read; a listing of
/// several pages may see writes made between them.
pub(crate) fn run(args: &ListArgs) -> Result<(), Failure> {
    let mut client = args.cluster.connect()?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    let mut scan = Scan {
        start: args.start.as_bytes().to_vec(),
        end: None,
        prefix: args.prefix.as_bytes().to_vec(),
        limit: PAGE_KEYS,
        with_values: true,
    };
    let mut out = std::io::stdout().lock();
    while left > 0 {
        scan.limit = u32::try_from(left).unwrap_or(u32::MAX).min(PAGE_KEYS);
        let page = client.scan(&scan)?;
        for (key, value) in page.keys.iter().zip(&page.values) {
            print_pair(&mut out, key, value, args.json)
                .map_err(|e| format!("cannot write the listing: {e}"))?;
        }
        left = left.saturating_sub(page.keys.len() as u64);
        match page.next {
            Some(next) => scan.start = next,
            None => break,
        }
    }
    out.flush().map_err(|e| format!("cannot write the listing: {e}"))?;
    Ok(())
}

fn print_pair(out: &mut impl Write, key: &[u8], value: &[u8], json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", crate::kv_cli::json_of(key, Some(value)));
    }
    out.write_all(key)?;
    out.write_all(b"\t")?;
    out.write_all(value)?;
    out.write_all(b"\n")
}

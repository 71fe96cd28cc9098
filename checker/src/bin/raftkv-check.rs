//! `raftkv-check`: tells whether recorded histories are linearizable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use raftkv_checker::html::Page;
use raftkv_checker::parse::{self, Format, ParsedHistory};
use raftkv_checker::{KvModel, RegisterModel, Report, Verdict, check};
use serde_json::json;

/// Checks histories of a key-value store or register for linearizability.
///
/// Reads our JSON Lines histories (as `raftkv bench --history` writes them), Porcupine's
/// key-value logs and Jepsen's etcd logs, and prints one line per file: the verdict, and for a
/// history that is not linearizable, the partition that fails, the longest prefix that can be
/// linearized and what cannot follow it.
#[derive(Parser)]
#[command(
    name = "raftkv-check",
    version,
    after_help = "Exit status: 0 if every history is linearizable, 1 if any is not, 3 if any is \
                  unknown (time limit) and none is not, 2 if a file cannot be read (the message \
                  names the file and the line)."
)]
struct Args {
    /// Format of the files; `auto` tells them apart by their first line.
    #[arg(
        long,
        default_value = "auto",
        value_parser = PossibleValuesParser::new(Format::ALL.map(Format::name))
            .map(|name| name.parse::<Format>().expect("the names come from Format::ALL")),
    )]
    format: Format,

    /// Give up on a file after this many seconds; its verdict is then `unknown`. No limit by default.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<Duration>,

    /// Also write one web page drawing every history, lane per client, to this file.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,

    /// Print one JSON object per file instead: {"file", "verdict", "ops", "partitions", "ms", ...},
    /// where "ms" is the time spent checking (reading excluded). An unreadable file gives
    /// {"file", "error", "line"}.
    #[arg(long)]
    json: bool,

    /// History files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// What became of the files so far, for the exit status.
#[derive(Default)]
struct Tally {
    unreadable: bool,
    not_linearizable: bool,
    unknown: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut page = args.html.as_ref().map(|_| Page::new());
    let mut tally = Tally::default();
    for file in &args.files {
        match parse::read(file, args.format) {
            Ok((format, history)) => {
                let report = check_history(&history, args.timeout, page.as_mut(), file);
                match report.verdict {
                    Verdict::Linearizable => {}
                    Verdict::NotLinearizable => tally.not_linearizable = true,
                    Verdict::Unknown => tally.unknown = true,
                }
                print_report(file, format, &report, args.json);
            }
            Err(error) => {
                tally.unreadable = true;
                eprintln!("raftkv-check: {error}");
                if args.json {
                    println!(
                        "{}",
                        json!({"file": file, "error": error.message, "line": error.line})
                    );
                }
                if let Some(page) = page.as_mut() {
                    page.add_error(&file.display().to_string(), &error.to_string());
                }
            }
        }
    }
    if let (Some(path), Some(page)) = (&args.html, page) {
        if let Err(error) = std::fs::write(path, page.finish()) {
            eprintln!("raftkv-check: {}: cannot write: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::from(if tally.unreadable {
        2
    } else if tally.not_linearizable {
        1
    } else if tally.unknown {
        3
    } else {
        0
    })
}

fn check_history(
    history: &ParsedHistory,
    timeout: Option<Duration>,
    page: Option<&mut Page>,
    file: &Path,
) -> Report {
    let title = file.display().to_string();
    match history {
        ParsedHistory::Kv(history) => {
            let report = check(history, &KvModel, timeout);
            if let Some(page) = page {
                page.add_history(&title, &KvModel, history, &report);
            }
            report
        }
        ParsedHistory::Register(history) => {
            let report = check(history, &RegisterModel, timeout);
            if let Some(page) = page {
                page.add_history(&title, &RegisterModel, history, &report);
            }
            report
        }
    }
}

fn print_report(file: &Path, format: Format, report: &Report, as_json: bool) {
    let ms = report.elapsed.as_secs_f64() * 1e3;
    if !as_json {
        let text = report.to_string().replace('\n', "\n  ");
        println!("{} ({ms:.1} ms): {text}", file.display());
        return;
    }
    let mut object = json!({
        "file": file,
        "verdict": report.verdict.as_str(),
        "ops": report.ops,
        "partitions": report.partitions.len(),
        "ms": ms,
        "format": format.name(),
    });
    if let Some((partition, _)) = report.violation() {
        object["failing_partition"] = json!(partition.name);
        object["explanation"] = json!(report.to_string());
    }
    let timed_out: Vec<&str> =
        report.timed_out().map(|partition| partition.name.as_str()).collect();
    if !timed_out.is_empty() {
        object["timed_out"] = json!(timed_out);
    }
    println!("{object}");
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a usable number of seconds"))
}

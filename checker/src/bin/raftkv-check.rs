//! `raftkv-check`: tells whether recorded histories are linearizable.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raftkv_checker::html::{Page, TimeUnit};
use raftkv_checker::parse::{self, Format, ParsedHistory, ReadError};
use raftkv_checker::{KvModel, Limits, Model, RegisterModel, Report, Verdict, check_within};
use serde_json::json;

/// Checks histories of a key-value store or register for linearizability.
///
/// Reads our JSON Lines histories (as `raftkv bench --history` and `raftkv-sim run --history`
/// write them; the format is described in the checker's README), Porcupine's key-value logs
/// and Jepsen's etcd logs, and prints one line per file: the verdict, and for a history that
/// is not linearizable, the partition that fails, the longest prefix that can be linearized
/// and what cannot follow it.
///
/// The search is exponential in the worst case (many operations that never returned, on one
/// key): past the time limit it gives up, and the verdict is `unknown`, never a guess.
#[derive(Parser)]
#[command(
    name = "raftkv-check",
    version,
    after_help = "Verdicts: `linearizable`, `not-linearizable`, or `unknown` when the check gave up \
                  at the time limit (the line then names what it was checking; --json gives \
                  \"verdict\": \"unknown\" and \"gave_up\").\n\n\
                  Exit status: 0 if every history is linearizable, 1 if any is not, 3 if any is \
                  unknown and none is not, 2 if a file cannot be read or holds no operation (the \
                  message names the file and the line), or on a usage error.\n\n\
                  Examples:\n  \
                  raftkv-check history.jsonl\n  \
                  raftkv-check --json --timeout 10 a.jsonl b.log\n  \
                  zcat history.jsonl.gz | raftkv-check -\n  \
                  raftkv-check --html report.html --timeout none big.jsonl"
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

    /// Give up on a file after this many seconds (decimals allowed, `none`: no limit); its
    /// verdict is then `unknown`.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_time_limit)]
    timeout: TimeLimit,

    /// The most memory, in MiB, that the search's caches of configurations take. A full cache
    /// slows the search but never changes its verdict.
    #[arg(long, value_name = "MIB", default_value_t = (Limits::DEFAULT_CACHE_BYTES >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    cache_mib: u64,

    /// Also write one web page drawing every history, lane per client, to this file. A
    /// partition is drawn in a window of at most 300 operations (around the violation when it
    /// fails) and a page draws at most 2,000 besides the failing partition.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,

    /// The unit of the histories' times, for the page's time axis: ns, us, ms, s, or lines
    /// [default: ns for JSON Lines, lines for Porcupine's and Jepsen's logs, which record no
    /// clock].
    #[arg(long, value_name = "UNIT")]
    time_unit: Option<TimeUnit>,

    /// Print one JSON object per file instead: {"file", "verdict", "ops", "partitions", "ms", ...},
    /// where "ms" is the time spent checking (reading excluded); an unknown verdict adds
    /// "gave_up" (why) and "timed_out" (the partitions). An unreadable or empty file gives
    /// {"file", "error", "line"}.
    #[arg(long)]
    json: bool,

    /// History files; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// `--timeout`: a duration or none.
#[derive(Clone, Copy)]
struct TimeLimit(Option<Duration>);

/// What became of the files so far, for the exit status.
#[derive(Default)]
struct Tally {
    unreadable: bool,
    not_linearizable: bool,
    unknown: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Found unwritable before the work, not after it.
    let html_file = match args.html.as_deref().map(File::create).transpose() {
        Ok(file) => file,
        Err(error) => {
            let path = args.html.as_deref().unwrap_or(Path::new("")).display();
            eprintln!("raftkv-check: {path}: cannot write the page: {error}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        time: args.timeout.0,
        cache_bytes: usize::try_from(args.cache_mib << 20).unwrap_or(usize::MAX),
    };
    let mut page = html_file.as_ref().map(|_| Page::new());
    let mut tally = Tally::default();
    for file in &args.files {
        match read(file, args.format) {
            Ok((format, history)) => {
                if let Some(page) = page.as_mut() {
                    page.set_time_unit(args.time_unit.unwrap_or(match format {
                        Format::Jsonl | Format::Auto => TimeUnit::Nanos,
                        Format::PorcupineKv | Format::JepsenEtcd => TimeUnit::Lines,
                    }));
                }
                let report = check_history(&history, limits, page.as_mut(), file);
                match report.verdict {
                    Verdict::Linearizable => {}
                    Verdict::NotLinearizable => tally.not_linearizable = true,
                    Verdict::Unknown => tally.unknown = true,
                }
                print_report(file, format, &report, limits, args.json);
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
    if let (Some(mut out), Some(page), Some(path)) = (html_file, page, &args.html) {
        if let Err(error) = out.write_all(page.finish().as_bytes()) {
            eprintln!("raftkv-check: {}: cannot write the page: {error}", path.display());
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

/// Reads the history in `file` (`-`: standard input); one with no operation is an error too,
/// as it most often means that whatever recorded it did not.
fn read(file: &Path, format: Format) -> Result<(Format, ParsedHistory), ReadError> {
    let (format, history) = if file == Path::new("-") {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map_err(|error| ReadError {
            file: file.to_owned(),
            line: None,
            message: format!("cannot read standard input: {error}"),
        })?;
        parse::parse(&text, format).map_err(|error| ReadError {
            file: file.to_owned(),
            line: Some(error.line),
            message: error.message,
        })?
    } else {
        parse::read(file, format)?
    };
    if history.is_empty() {
        return Err(ReadError {
            file: file.to_owned(),
            line: None,
            message: "the history is empty: no operation to check".to_owned(),
        });
    }
    Ok((format, history))
}

fn check_history(
    history: &ParsedHistory,
    limits: Limits,
    page: Option<&mut Page>,
    file: &Path,
) -> Report {
    let title = file.display().to_string();
    match history {
        ParsedHistory::Kv(history) => check_one(&title, &KvModel, history, limits, page),
        ParsedHistory::Register(history) => {
            check_one(&title, &RegisterModel, history, limits, page)
        }
    }
}

fn check_one<M: Model>(
    title: &str,
    model: &M,
    history: &[M::Operation],
    limits: Limits,
    page: Option<&mut Page>,
) -> Report {
    let partitions = model.partition(history).len();
    let bar = progress_bar(title, history.len(), partitions, limits);
    let report = check_within(history, model, limits, &|| bar.inc(1));
    bar.finish_and_clear();
    if let Some(page) = page {
        page.add_history(title, model, history, &report);
    }
    report
}

/// How often the progress line is redrawn, so that the elapsed time moves.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

/// A progress line on a terminal, nothing otherwise.
fn progress_bar(title: &str, ops: usize, partitions: usize, limits: Limits) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(partitions as u64), ProgressDrawTarget::stderr());
    let limit = match limits.time {
        Some(limit) => format!("of {} s ", limit.as_secs_f64()),
        None => String::new(),
    };
    let template = format!(
        "{{spinner}} {{msg}}: {{pos}}/{{len}} partitions checked, {{elapsed}} {limit}elapsed"
    );
    bar.set_style(ProgressStyle::with_template(&template).expect("the template is valid"));
    bar.set_message(format!("{title} ({ops} ops)"));
    bar.enable_steady_tick(PROGRESS_TICK);
    bar
}

fn print_report(file: &Path, format: Format, report: &Report, limits: Limits, as_json: bool) {
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
        "steps": report.partitions.iter().map(|partition| partition.steps).sum::<u64>(),
        "largest_partition_ops": report.partitions.iter().map(|partition| partition.ops.len()).max(),
    });
    if let Some((partition, _)) = report.violation() {
        object["failing_partition"] = json!(partition.name);
        object["explanation"] = json!(report.to_string());
    }
    let timed_out: Vec<&str> =
        report.timed_out().map(|partition| partition.name.as_str()).collect();
    if !timed_out.is_empty() {
        object["timed_out"] = json!(timed_out);
        let seconds = limits.time.map_or(0.0, |limit| limit.as_secs_f64());
        object["gave_up"] = json!(format!("the time limit of {seconds} s ran out"));
        object["cache_full"] = json!(report.timed_out().any(|partition| partition.cache_full));
    }
    println!("{object}");
}

fn parse_time_limit(text: &str) -> Result<TimeLimit, String> {
    if text == "none" {
        return Ok(TimeLimit(None));
    }
    let seconds: f64 =
        text.parse().map_err(|_| format!("{text:?} is not a number of seconds or `none`"))?;
    Duration::try_from_secs_f64(seconds)
        .map(|limit| TimeLimit(Some(limit)))
        .map_err(|_| format!("{text:?} is not a usable number of seconds"))
}

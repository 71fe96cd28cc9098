//! Times the checker on Porcupine's test set against Porcupine's own times (expected.tsv), and
//! on large generated histories. Run with `cargo bench -p raftkv-checker`; arguments after
//! `--`: `--runs N` (default 15) and any words, to time only the files whose path has one.
//!
//! Times are the checker's own (`Report::elapsed`: partitioning, search, explanation), parsing
//! excluded, as in Porcupine's figures. Each figure is the median over the runs.

#[path = "../tests/support"]
mod support {
    pub(crate) mod generate;
    pub(crate) mod kv_rules;
    pub(crate) mod rng;
}

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use raftkv_checker::parse::{self, Format, ParsedHistory};
use raftkv_checker::{KvModel, Model, RegisterModel, Report, check};
use support::generate::{Shape, linearizable_history};
use support::rng::Rng;

struct Options {
    runs: usize,
    filters: Vec<String>,
}

fn main() -> ExitCode {
    let options = options();
    let histories = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories/porcupine");
    let table =
        std::fs::read_to_string(histories.join("expected.tsv")).expect("expected.tsv is readable");
    println!("runs per history: {}; times in ms, medians", options.runs);
    println!(
        "{:<22} {:>5} {:<17} {:>9} {:>11} {:>7}",
        "history", "ops", "verdict", "ms", "porcupine", "ratio"
    );
    let mut totals = [Total::default(), Total::default()];
    let mut wrong = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (path, expected, porcupine_ms) = (fields[0], fields[2], fields[4]);
        if !options.filters.is_empty()
            && !options.filters.iter().any(|filter| path.contains(filter.as_str()))
        {
            continue;
        }
        let porcupine_ms: f64 = porcupine_ms.parse().expect("porcupine_ms is a number");
        let (_, history) = parse::read(&histories.join(path), Format::Auto).expect("readable");
        let (verdict, ms) = match &history {
            ParsedHistory::Kv(history) => time(&KvModel, history, options.runs),
            ParsedHistory::Register(history) => time(&RegisterModel, history, options.runs),
        };
        let mark = if verdict == expected { "" } else { "  WRONG" };
        wrong += usize::from(verdict != expected);
        println!(
            "{path:<22} {:>5} {verdict:<17} {ms:>9.3} {porcupine_ms:>11.3} {:>7.3}{mark}",
            history.len(),
            ms / porcupine_ms
        );
        let total = &mut totals[usize::from(path.starts_with("kv/"))];
        total.ms += ms;
        total.porcupine_ms += porcupine_ms;
        total.files += 1;
    }
    println!();
    let [etcd, kv] = totals;
    let all = Total {
        ms: etcd.ms + kv.ms,
        porcupine_ms: etcd.porcupine_ms + kv.porcupine_ms,
        files: etcd.files + kv.files,
    };
    for (name, total) in [("etcd", etcd), ("kv", kv), ("all", all)] {
        println!(
            "total {name:<5} {:>3} files {:>9.3} ms, porcupine {:>9.3} ms, ratio {:.3}",
            total.files,
            total.ms,
            total.porcupine_ms,
            total.ms / total.porcupine_ms
        );
    }
    if options.filters.is_empty() {
        println!();
        generated(options.runs);
    }
    if wrong > 0 {
        println!("{wrong} verdicts differ from expected.tsv");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[derive(Clone, Copy, Default)]
struct Total {
    ms: f64,
    porcupine_ms: f64,
    files: usize,
}

/// Large histories of our own, linearizable by construction.
fn generated(runs: usize) {
    let shapes = [
        ("20000 ops, 20 keys, 16 clients", 16, 20, 20_000, 0),
        ("same, 2% never return", 16, 20, 20_000, 2),
        ("2000 ops, 1 key, 8 clients, 5% never", 8, 1, 2_000, 5),
    ];
    for (name, clients, keys, ops, unknown_percent) in shapes {
        let shape = Shape {
            clients,
            keys,
            ops,
            values: 50,
            unknown_percent,
            get_percent: 40,
            appends_only: false,
            multi_percent: 0,
            batch_percent: 0,
        };
        let history = linearizable_history(&mut Rng::new(1), &shape);
        let (verdict, ms) = time(&KvModel, &history, runs);
        println!("generated: {name:<38} {verdict:<14} {ms:>9.3} ms");
    }
}

/// The verdict and the median time of `runs` checks.
fn time<M: Model>(model: &M, history: &[M::Operation], runs: usize) -> (&'static str, f64) {
    let reports: Vec<Report> = (0..runs).map(|_| check(history, model, None)).collect();
    let mut times: Vec<Duration> = reports.iter().map(|report| report.elapsed).collect();
    times.sort_unstable();
    (reports[0].verdict.as_str(), times[times.len() / 2].as_secs_f64() * 1e3)
}

fn options() -> Options {
    let mut options = Options { runs: 15, filters: Vec::new() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                options.runs = args
                    .next()
                    .and_then(|runs| runs.parse().ok())
                    .filter(|&runs| runs > 0)
                    .expect("--runs takes a positive number");
            }
            // Passed by `cargo bench`.
            "--bench" => {}
            filter => options.filters.push(filter.to_owned()),
        }
    }
    options
}

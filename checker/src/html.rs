//! A self-contained web page that draws checked histories: per partition, a lane per client and
//! a bar per operation from its call to its return, with the linearization (or the longest
//! linearizable prefix and the operations that cannot follow it) marked.
//!
//! The page is built in `String`s, which `write!` cannot fail to write to: hence `let _ =`.

use std::fmt::Write as _;

use crate::model::{Model, Recorded};
use crate::report::{PartitionOutcome, PartitionReport, Report, StuckReason};

/// A page being built, one section per history.
///
/// ```
/// # use raftkv_checker::{check, html::Page, KvModel, Operation};
/// # let history: Vec<Operation> = Vec::new();
/// let report = check(&history, &KvModel, None);
/// let mut page = Page::new();
/// page.add_history("history.jsonl", &KvModel, &history, &report);
/// let html: String = page.finish();
/// # assert!(html.starts_with("<!DOCTYPE html>"));
/// ```
#[derive(Default)]
pub struct Page {
    summary: String,
    sections: String,
    count: usize,
}

/// Partitions with more operations are summarized but not drawn: the page would not load.
const MAX_OPS_DRAWN: usize = 5000;
/// Width of one step of compressed time, in pixels.
const STEP: f64 = 12.0;
const ROW_HEIGHT: f64 = 20.0;
const BAR_HEIGHT: f64 = 14.0;
const LANE_LABEL_WIDTH: f64 = 90.0;
/// Room above the lanes for the time labels.
const AXIS_HEIGHT: f64 = 18.0;

impl Page {
    /// A page with no history yet.
    pub fn new() -> Self {
        Page::default()
    }

    /// Adds a section for `history`, checked with `model` into `report`.
    pub fn add_history<M: Model>(
        &mut self,
        title: &str,
        model: &M,
        history: &[M::Operation],
        report: &Report,
    ) {
        let anchor = self.next_anchor();
        let verdict = report.verdict.as_str();
        let _ = writeln!(
            self.summary,
            "<tr><td><a href=\"#{anchor}\">{}</a></td><td class=\"{verdict}\">{verdict}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            escape(title),
            report.ops,
            report.partitions.len(),
            report.elapsed.as_secs_f64() * 1e3,
        );
        let _ = writeln!(
            self.sections,
            "<section id=\"{anchor}\"><h2>{} <span class=\"badge {verdict}\">{verdict}</span></h2>\n<pre>{}</pre>",
            escape(title),
            escape(&report.to_string())
        );
        let open_all = report.partitions.len() == 1;
        for partition in &report.partitions {
            self.add_partition(model, history, partition, open_all);
        }
        self.sections.push_str("</section>\n");
    }

    /// Adds a section for a history that could not be read.
    pub fn add_error(&mut self, title: &str, message: &str) {
        let anchor = self.next_anchor();
        let _ = writeln!(
            self.summary,
            "<tr><td><a href=\"#{anchor}\">{}</a></td><td class=\"error\">unreadable</td><td></td><td></td><td></td></tr>",
            escape(title)
        );
        let _ = writeln!(
            self.sections,
            "<section id=\"{anchor}\"><h2>{} <span class=\"badge error\">unreadable</span></h2>\n<pre>{}</pre></section>",
            escape(title),
            escape(message)
        );
    }

    /// The whole page.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>raftkv-check</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>Linearizability check</h1>\n<table class=\"summary\"><tr><th>history</th><th>verdict</th><th>ops</th><th>partitions</th><th>ms</th></tr>\n{}</table>\n{LEGEND}\n{}</body></html>\n",
            self.summary, self.sections
        )
    }

    fn next_anchor(&mut self) -> String {
        self.count += 1;
        format!("history-{}", self.count)
    }

    fn add_partition<M: Model>(
        &mut self,
        model: &M,
        history: &[M::Operation],
        partition: &PartitionReport,
        open_all: bool,
    ) {
        let (status, open) = match &partition.outcome {
            PartitionOutcome::Linearizable { .. } => ("linearizable", open_all),
            PartitionOutcome::NotLinearizable(_) => ("not-linearizable", true),
            PartitionOutcome::TimedOut => ("unknown", true),
            PartitionOutcome::Skipped => ("skipped", false),
        };
        let _ = writeln!(
            self.sections,
            "<details{}><summary>{} <span class=\"{status}\">{}</span> ({} ops)</summary>",
            if open { " open" } else { "" },
            escape(&partition.name),
            status.replace('-', " "),
            partition.ops.len()
        );
        if partition.ops.len() > MAX_OPS_DRAWN {
            let _ = writeln!(
                self.sections,
                "<p>Too many operations to draw (more than {MAX_OPS_DRAWN}).</p>"
            );
        } else {
            draw_partition(&mut self.sections, model, history, partition);
        }
        self.sections.push_str("</details>\n");
    }
}

/// What the page says about one operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Takes effect at this position (from 1) of the linearization or of the longest prefix.
    Placed(usize),
    /// Could come after the longest prefix, but does not work there.
    Stuck(StuckReason),
    /// A read that nothing after the longest prefix can make possible.
    Unreachable,
    /// Neither.
    Unplaced,
}

fn draw_partition<M: Model>(
    out: &mut String,
    model: &M,
    history: &[M::Operation],
    partition: &PartitionReport,
) {
    let ops = &partition.ops;
    let marks = marks(partition, history.len());
    let due = match &partition.outcome {
        PartitionOutcome::NotLinearizable(violation) => Some(violation.due.index),
        _ => None,
    };
    // Time is compressed to the order of distinct instants, so that bursts and pauses read alike.
    let mut instants: Vec<u64> = ops
        .iter()
        .flat_map(|&op| [Some(history[op].call()), history[op].ret()])
        .flatten()
        .collect();
    instants.sort_unstable();
    instants.dedup();
    let x_of = |time: u64| {
        LANE_LABEL_WIDTH + STEP * (instants.partition_point(|&instant| instant < time) as f64 + 1.0)
    };
    let x_end = LANE_LABEL_WIDTH + STEP * (instants.len() as f64 + 2.0);
    let width = x_end + STEP;
    let rows = lay_out_rows(history, ops);
    let row_count = rows.iter().map(|(_, rows)| rows.len()).sum::<usize>();
    let lanes_bottom = AXIS_HEIGHT + ROW_HEIGHT * row_count as f64;
    let _ = writeln!(
        out,
        "<div class=\"scroll\"><svg width=\"{width:.0}\" height=\"{:.0}\">",
        lanes_bottom + 4.0
    );
    let mut top = AXIS_HEIGHT;
    for (client, rows) in &rows {
        let lane_height = ROW_HEIGHT * rows.len() as f64;
        let _ = writeln!(
            out,
            "<rect class=\"lane{}\" x=\"0\" y=\"{top}\" width=\"{width:.0}\" height=\"{lane_height}\"/><text class=\"client\" x=\"4\" y=\"{:.1}\">client {client}</text>",
            if client % 2 == 0 { " even" } else { "" },
            top + ROW_HEIGHT / 2.0 + 4.0
        );
        top += lane_height;
    }
    // A labelled tick every few instants, as many as the labels leave room for.
    let widest_label = instants.last().map_or(1, |last| last.to_string().len());
    let every = ((widest_label as f64 * 6.5 + 10.0) / STEP).ceil() as usize;
    for &instant in instants.iter().step_by(every) {
        let x = x_of(instant);
        let _ = writeln!(
            out,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"12\">{instant}</text><line class=\"grid\" x1=\"{x:.1}\" y1=\"15\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.0}\"/>"
        );
    }
    let mut row_index = 0;
    for (_, rows) in &rows {
        for row in rows {
            let y = AXIS_HEIGHT + ROW_HEIGHT * row_index as f64 + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
            for &op in row {
                let operation = &history[op];
                let x = x_of(operation.call());
                let end = operation.ret().map_or(x_end, x_of);
                let width = (end - x).max(STEP / 2.0);
                draw_bar(out, model, operation, marks[op], due == Some(op), x, y, width);
            }
            row_index += 1;
        }
    }
    out.push_str("</svg></div>\n");
}

#[allow(clippy::too_many_arguments)]
fn draw_bar<M: Model>(
    out: &mut String,
    model: &M,
    operation: &M::Operation,
    mark: Mark,
    due: bool,
    x: f64,
    y: f64,
    width: f64,
) {
    let (class, label, note) = match mark {
        Mark::Placed(position) => {
            ("placed", position.to_string(), format!("takes effect {}", ordinal(position)))
        }
        Mark::Stuck(StuckReason::Impossible) => {
            ("stuck", "!".to_owned(), "cannot come next: impossible there".to_owned())
        }
        Mark::Stuck(StuckReason::DeadEnd) => {
            ("stuck", "!".to_owned(), "cannot come next: nothing works after it".to_owned())
        }
        Mark::Unreachable => (
            "stuck",
            "!".to_owned(),
            "can never be allowed: nothing that may come first leaves what it read".to_owned(),
        ),
        Mark::Unplaced => ("unplaced", String::new(), "not placed".to_owned()),
    };
    let returned = operation.ret();
    let when = match returned {
        Some(ret) => format!("[{}, {ret}]", operation.call()),
        None => format!("[{}, never returned]", operation.call()),
    };
    let due_note = if due { "; it returned first, so it must come next at the latest" } else { "" };
    let _ = writeln!(
        out,
        "<g class=\"op {class}{}{}\"><title>op {} by client {} {when}\n{}\n{note}{due_note}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT}\" rx=\"3\"/>",
        if returned.is_none() { " open" } else { "" },
        if due { " due" } else { "" },
        operation.id(),
        operation.client(),
        escape(&model.describe_operation(operation)),
    );
    if !label.is_empty() && width >= 8.0 * label.len() as f64 {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            x + 3.0,
            y + BAR_HEIGHT - 3.5
        );
    }
    out.push_str("</g>\n");
}

/// The mark of every operation of the history that the partition places or blames.
fn marks(partition: &PartitionReport, history_len: usize) -> Vec<Mark> {
    let mut marks = vec![Mark::Unplaced; history_len];
    let placed: Vec<usize> = match &partition.outcome {
        PartitionOutcome::Linearizable { order } => order.clone(),
        PartitionOutcome::NotLinearizable(violation) => {
            if let Some(read) = &violation.unreachable {
                marks[read.index] = Mark::Unreachable;
            }
            for stuck in &violation.stuck {
                marks[stuck.operation.index] = Mark::Stuck(stuck.reason);
            }
            violation.prefix.iter().map(|operation| operation.index).collect()
        }
        PartitionOutcome::TimedOut | PartitionOutcome::Skipped => Vec::new(),
    };
    for (position, op) in placed.into_iter().enumerate() {
        marks[op] = Mark::Placed(position + 1);
    }
    marks
}

/// Per client (in increasing order), rows of operations that do not overlap, each row in call
/// order. An operation that never returned occupies its row to the end.
fn lay_out_rows<O: Recorded>(history: &[O], ops: &[usize]) -> Vec<(u64, Vec<Vec<usize>>)> {
    let mut by_client: Vec<usize> = ops.to_vec();
    by_client.sort_by_key(|&op| (history[op].client(), history[op].call()));
    let mut lanes: Vec<(u64, Vec<Vec<usize>>)> = Vec::new();
    // The end of the last operation in each row of the current lane; `None`: never returned.
    let mut ends: Vec<Option<u64>> = Vec::new();
    for op in by_client {
        let operation = &history[op];
        if lanes.last().is_none_or(|(client, _)| *client != operation.client()) {
            lanes.push((operation.client(), Vec::new()));
            ends.clear();
        }
        let (_, rows) = lanes.last_mut().expect("a lane was just pushed if there was none");
        let free = ends.iter().position(|end| end.is_some_and(|end| end < operation.call()));
        match free {
            Some(row) => {
                rows[row].push(op);
                ends[row] = operation.ret();
            }
            None => {
                rows.push(vec![op]);
                ends.push(operation.ret());
            }
        }
    }
    lanes
}

fn ordinal(position: usize) -> String {
    let suffix = match (position % 10, position % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{position}{suffix}")
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2228; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; }
table.summary { border-collapse: collapse; }
table.summary td, table.summary th { padding: 3px 12px; border-bottom: 1px solid #dde1e6; text-align: left; }
pre { background: #f5f6f8; padding: 10px; overflow-x: auto; font-size: 13px; }
.linearizable { color: #1e7b34; } .not-linearizable, .error { color: #b3261e; } .unknown { color: #9a6700; } .skipped { color: #6b7280; }
.badge { font-size: 13px; border: 1px solid currentColor; border-radius: 4px; padding: 1px 6px; }
details { margin: 6px 0; } summary { cursor: pointer; }
.scroll { overflow-x: auto; border: 1px solid #dde1e6; margin: 6px 0; }
svg text { font: 11px system-ui, sans-serif; pointer-events: none; }
.lane { fill: #ffffff; } .lane.even { fill: #f7f8fa; } .client { fill: #4b5563; }
.tick { fill: #6b7280; text-anchor: middle; } .grid { stroke: #e5e7eb; stroke-width: 1; }
.op rect { stroke-width: 1.5; }
.op.placed rect { fill: #9fd8ac; stroke: #1e7b34; }
.op.unplaced rect { fill: #d9dde3; stroke: #8a929c; }
.op.stuck rect { fill: #f7c4c0; stroke: #b3261e; }
.op.due rect { stroke-width: 3; }
.op.open rect { stroke-dasharray: 4 3; fill-opacity: 0.55; }
.op:hover rect { stroke: #111827; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 26px; height: 11px; border: 1.5px solid; border-radius: 3px; vertical-align: middle; margin-right: 5px; }
";

const LEGEND: &str = "<p class=\"legend\">\
<span><i style=\"background:#9fd8ac;border-color:#1e7b34\"></i>takes effect (number: its place in the order)</span>\
<span><i style=\"background:#f7c4c0;border-color:#b3261e\"></i>cannot come after the longest linearizable prefix</span>\
<span><i style=\"background:#f7c4c0;border-color:#b3261e;border-width:3px\"></i>returned first among the rest</span>\
<span><i style=\"background:#d9dde3;border-color:#8a929c\"></i>not placed</span>\
<span><i style=\"border-style:dashed\"></i>never returned</span>\
Hover over an operation for details. Time is compressed: only the order of calls and returns is kept.</p>";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, KvModel, Operation, check};

    fn put(id: u64, client: u64, call: u64, ret: Option<u64>, value: &str) -> Operation {
        Operation {
            id,
            client,
            call,
            ret,
            key: "k".to_owned(),
            command: Command::Put { value: value.to_owned() },
        }
    }

    #[test]
    fn a_client_gets_a_second_row_only_while_its_operations_overlap() {
        let history = [
            put(0, 1, 0, None, "a"),
            put(1, 1, 5, Some(6), "b"),
            put(2, 2, 1, Some(2), "c"),
            put(3, 2, 3, Some(4), "d"),
        ];
        let rows = lay_out_rows(&history, &[0, 1, 2, 3]);
        assert_eq!(rows, [(1, vec![vec![0], vec![1]]), (2, vec![vec![2, 3]])]);
    }

    #[test]
    fn marks_the_prefix_and_the_operations_stuck_after_it() {
        let get = |id, call, output: &str| Operation {
            id,
            client: 2,
            call,
            ret: Some(call + 1),
            key: "k".to_owned(),
            command: Command::Get { output: Some(output.to_owned()) },
        };
        let history = vec![
            put(0, 1, 0, Some(1), "a"),
            get(1, 2, "a"),
            put(2, 1, 4, Some(5), "b"),
            get(3, 6, "a"),
        ];
        let report = check(&history, &KvModel, None);
        let marks = marks(&report.partitions[0], history.len());
        let expected = [
            Mark::Placed(1),
            Mark::Placed(2),
            Mark::Placed(3),
            Mark::Stuck(StuckReason::Impossible),
        ];
        assert!(marks == expected);
        let mut page = Page::new();
        page.add_history("a <bad> history", &KvModel, &history, &report);
        let html = page.finish();
        assert!(html.contains("a &lt;bad&gt; history"));
        assert!(html.contains("class=\"op stuck due\""));
        assert!(!html.contains("http:") && !html.contains("https:"), "no external resources");
    }

    #[test]
    fn ordinals_read_as_english() {
        let words: Vec<String> =
            [1, 2, 3, 4, 11, 12, 13, 21, 102].into_iter().map(ordinal).collect();
        assert_eq!(words, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd"]);
    }
}

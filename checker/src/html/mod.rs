//! A self-contained web page that draws checked histories: per partition, a lane per client and
//! a bar per operation from its call to its return, labelled with what it did, with the
//! linearization (or the longest linearizable prefix and the operations that cannot follow
//! it) marked.
//!
//! The page stays small whatever the history: a partition is drawn in a window of at most
//! [`WINDOW_OPS`] operations (around the violation when it fails), and the page draws at most
//! [`PAGE_OPS`] operations in all, besides the failing partition, which is always drawn.
//!
//! The page is built in `String`s, which `write!` cannot fail to write to: hence `let _ =`.

mod style;
mod time_axis;
mod timeline;
mod window;

use std::fmt::Write as _;

pub use time_axis::TimeUnit;

use crate::model::Model;
use crate::report::{PartitionOutcome, PartitionReport, Report};
use window::Window;

/// A page being built, one section per history.
///
/// ```
/// # use raftkv_checker::{check, html::{Page, TimeUnit}, KvModel, Operation};
/// # let history: Vec<Operation> = Vec::new();
/// let report = check(&history, &KvModel, None);
/// let mut page = Page::new();
/// page.set_time_unit(TimeUnit::Nanos);
/// page.add_history("history.jsonl", &KvModel, &history, &report);
/// let html: String = page.finish();
/// # assert!(html.starts_with("<!DOCTYPE html>"));
/// ```
pub struct Page {
    summary: String,
    sections: String,
    count: usize,
    time_unit: TimeUnit,
    /// How many more operations the page draws, besides failing partitions.
    ops_left: usize,
}

/// The most operations one drawing shows.
pub const WINDOW_OPS: usize = 300;
/// The most operations a page draws, besides the windows of failing partitions.
pub const PAGE_OPS: usize = 2_000;

impl Default for Page {
    fn default() -> Self {
        Page {
            summary: String::new(),
            sections: String::new(),
            count: 0,
            time_unit: TimeUnit::Nanos,
            ops_left: PAGE_OPS,
        }
    }
}

impl Page {
    /// A page with no history yet, whose times are in nanoseconds until
    /// [`Page::set_time_unit`] says otherwise.
    pub fn new() -> Self {
        Page::default()
    }

    /// The unit of the times of the histories added from now on.
    pub fn set_time_unit(&mut self, unit: TimeUnit) {
        self.time_unit = unit;
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
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>raftkv-check</title>\n<style>{}</style></head>\n<body>\n<h1>Linearizability check</h1>\n<table class=\"summary\"><tr><th>history</th><th>verdict</th><th>ops</th><th>partitions</th><th>ms</th></tr>\n{}</table>\n{}\n{}</body></html>\n",
            style::STYLE,
            self.summary,
            style::LEGEND,
            self.sections
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
        self.draw_or_explain_why_not(model, history, partition);
        self.sections.push_str("</details>\n");
    }

    fn draw_or_explain_why_not<M: Model>(
        &mut self,
        model: &M,
        history: &[M::Operation],
        partition: &PartitionReport,
    ) {
        let fails = match &partition.outcome {
            PartitionOutcome::NotLinearizable(_) => true,
            PartitionOutcome::Skipped => {
                self.sections.push_str(
                    "<p class=\"note\">Not drawn: another partition fails, so this one was not \
                     searched to the end.</p>\n",
                );
                return;
            }
            PartitionOutcome::Linearizable { .. } | PartitionOutcome::TimedOut => false,
        };
        let window = Window::of(history, partition, WINDOW_OPS);
        if !fails && window.ops.len() > self.ops_left {
            let _ = writeln!(
                self.sections,
                "<p class=\"note\">Not drawn: the page draws at most {PAGE_OPS} operations \
                 besides the partition that fails, to stay small.</p>"
            );
            return;
        }
        self.ops_left = self.ops_left.saturating_sub(window.ops.len());
        if window.ops.len() < partition.ops.len() {
            let _ = writeln!(
                self.sections,
                "<p class=\"note\">Drawn: {} of its {} operations, the {} by call.</p>",
                window.ops.len(),
                partition.ops.len(),
                if fails { "ones around where it fails" } else { "first" },
            );
        }
        timeline::draw(&mut self.sections, model, history, partition, &window.ops, self.time_unit);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, KvModel, Operation, check};

    #[test]
    fn ordinals_read_as_english() {
        let words: Vec<String> =
            [1, 2, 3, 4, 11, 12, 13, 21, 102].into_iter().map(ordinal).collect();
        assert_eq!(words, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd"]);
    }

    /// `ops` puts on key `k` by alternating clients, one after the other, then a get that reads
    /// what the one in the middle wrote: not linearizable, long after the start.
    fn long_history_failing_in_the_middle(ops: u64) -> Vec<Operation> {
        let mut history: Vec<Operation> = (0..ops)
            .map(|id| Operation {
                id,
                client: id % 3,
                call: 10 * id,
                ret: Some(10 * id + 5),
                key: "k".to_owned(),
                command: Command::Put { value: id.to_string() },
            })
            .collect();
        let middle = ops / 2;
        history[middle as usize].command = Command::Get { output: Some("nothing".to_owned()) };
        history
    }

    #[test]
    fn a_failing_partition_is_drawn_around_the_violation_however_long() {
        let history = long_history_failing_in_the_middle(20_000);
        let report = check(&history, &KvModel, None);
        let mut page = Page::new();
        page.add_history("long", &KvModel, &history, &report);
        let html = page.finish();
        assert_eq!(html.matches("<svg ").count(), 1);
        assert!(html.contains("of its 20000 operations, the ones around where it fails"));
        let bars = html.matches("<g class=\"op ").count();
        assert!((WINDOW_OPS..WINDOW_OPS + 5).contains(&bars), "{bars} bars");
        assert!(html.contains(">get nothing</text>"), "the failing read is labelled");
        assert!(html.contains("class=\"op stuck"), "and marked");
        assert!(html.len() < 200_000, "{} bytes", html.len());
    }

    #[test]
    fn a_page_draws_a_bounded_number_of_operations() {
        let mut page = Page::new();
        for key in 0..20 {
            let history: Vec<Operation> = (0..500)
                .map(|id| Operation {
                    id,
                    client: id % 4,
                    call: 10 * id,
                    ret: Some(10 * id + 5),
                    key: format!("k{key}"),
                    command: Command::Put { value: id.to_string() },
                })
                .collect();
            let report = check(&history, &KvModel, None);
            page.add_history(&format!("h{key}"), &KvModel, &history, &report);
        }
        let html = page.finish();
        let bars = html.matches("<g class=\"op ").count();
        assert_eq!(bars, PAGE_OPS / WINDOW_OPS * WINDOW_OPS, "whole windows, within the bound");
        assert!(html.contains("Not drawn: the page draws at most 2000 operations"));
    }
}

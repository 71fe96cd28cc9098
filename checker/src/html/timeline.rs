//! The drawing of one partition: a lane per client, a bar per operation from its call to its
//! return, labelled and marked with what the check found.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::time_axis::{Axis, TimeUnit};
use super::{escape, ordinal};
use crate::model::{Model, Recorded};
use crate::report::{PartitionOutcome, PartitionReport, StuckReason};

/// The narrowest step of compressed time, from one instant to the next, in pixels.
const STEP: f64 = 12.0;
/// The most characters of a label that a bar is widened for (longer ones are cut).
const LABEL_CHARS_MAX: usize = 16;
const ROW_HEIGHT: f64 = 20.0;
const BAR_HEIGHT: f64 = 14.0;
const LANE_LABEL_WIDTH: f64 = 90.0;
/// Room above the lanes for the time labels.
const AXIS_HEIGHT: f64 = 18.0;
/// The width of a character of the bars' labels, about, in pixels.
const CHAR_WIDTH: f64 = 6.2;
/// Room around a label, in pixels.
const LABEL_PADDING: f64 = 8.0;

/// What the page says about one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Where a drawing's bars go: time is compressed to the order of distinct instants, so that
/// bursts and pauses read alike, with each step as wide as the labels of the bars that end
/// there need.
struct Layout {
    instants: Vec<u64>,
    /// The x of each instant.
    xs: Vec<f64>,
}

impl Layout {
    fn new<M: Model>(model: &M, history: &[M::Operation], ops: &[usize]) -> Layout {
        let mut instants: Vec<u64> = ops
            .iter()
            .flat_map(|&op| [Some(history[op].call()), history[op].ret()])
            .flatten()
            .collect();
        instants.sort_unstable();
        instants.dedup();
        let position = |time: u64| instants.partition_point(|&instant| instant < time);
        // The least x of each instant past its call's x that the bars ending there need.
        let mut widths: Vec<(usize, usize, f64)> = ops
            .iter()
            .filter_map(|&op| {
                let operation = &history[op];
                let ret = operation.ret()?;
                let chars = model.label(operation).chars().count().min(LABEL_CHARS_MAX);
                let width = chars as f64 * CHAR_WIDTH + LABEL_PADDING;
                Some((position(ret), position(operation.call()), width))
            })
            .collect();
        widths.sort_unstable_by_key(|&(ret, _, _)| ret);
        let mut xs: Vec<f64> = Vec::with_capacity(instants.len());
        let mut needs = widths.iter().peekable();
        for index in 0..instants.len() {
            let mut x = xs.last().map_or(LANE_LABEL_WIDTH + STEP, |last| last + STEP);
            while let Some(&(_, call, width)) = needs.next_if(|&&(ret, _, _)| ret == index) {
                x = x.max(xs.get(call).map_or(x, |call_x| call_x + width));
            }
            xs.push(x);
        }
        Layout { instants, xs }
    }

    fn x_of(&self, time: u64) -> f64 {
        let index = self.instants.partition_point(|&instant| instant < time);
        self.xs.get(index).copied().unwrap_or_else(|| self.x_end())
    }

    /// Where the bars of operations that never returned end.
    fn x_end(&self) -> f64 {
        self.xs.last().map_or(LANE_LABEL_WIDTH, |last| last + 8.0 * STEP)
    }
}

/// Draws the operations `ops` of `partition` (indices into the history), with times in `unit`.
pub(super) fn draw<M: Model>(
    out: &mut String,
    model: &M,
    history: &[M::Operation],
    partition: &PartitionReport,
    ops: &[usize],
    unit: TimeUnit,
) {
    let marks = marks(partition);
    let due = match &partition.outcome {
        PartitionOutcome::NotLinearizable(violation) => Some(violation.due.index),
        _ => None,
    };
    let layout = Layout::new(model, history, ops);
    let axis = Axis::new(
        unit,
        layout.instants.first().copied().unwrap_or(0),
        layout.instants.last().copied().unwrap_or(0),
    );
    let width = layout.x_end() + STEP;
    let rows = lay_out_rows(history, ops);
    let row_count = rows.iter().map(|(_, rows)| rows.len()).sum::<usize>();
    let lanes_bottom = AXIS_HEIGHT + ROW_HEIGHT * row_count as f64;
    let _ = writeln!(
        out,
        "<p class=\"axis\">{}</p>\n<div class=\"scroll\"><svg width=\"{width:.0}\" height=\"{:.0}\">",
        escape(&axis.caption()),
        lanes_bottom + 4.0
    );
    draw_lanes(out, &rows, width);
    draw_ticks(out, &layout, &axis, lanes_bottom);
    let mut row_index = 0;
    for (_, rows) in &rows {
        for row in rows {
            let y = AXIS_HEIGHT + ROW_HEIGHT * row_index as f64 + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
            for &op in row {
                let operation = &history[op];
                let x = layout.x_of(operation.call());
                let end = operation.ret().map_or(layout.x_end(), |ret| layout.x_of(ret));
                let bar = Bar { x, y, width: (end - x).max(STEP / 2.0) };
                let mark = marks.get(&op).copied().unwrap_or(Mark::Unplaced);
                draw_bar(out, model, operation, mark, due == Some(op), bar);
            }
            row_index += 1;
        }
    }
    out.push_str("</svg></div>\n");
}

fn draw_lanes(out: &mut String, rows: &[(u64, Vec<Vec<usize>>)], width: f64) {
    let mut top = AXIS_HEIGHT;
    for (client, rows) in rows {
        let lane_height = ROW_HEIGHT * rows.len() as f64;
        let _ = writeln!(
            out,
            "<rect class=\"lane{}\" x=\"0\" y=\"{top}\" width=\"{width:.0}\" height=\"{lane_height}\"/><text class=\"client\" x=\"4\" y=\"{:.1}\">client {client}</text>",
            if client % 2 == 0 { " even" } else { "" },
            top + ROW_HEIGHT / 2.0 + 4.0
        );
        top += lane_height;
    }
}

/// A labelled tick at as many instants as the labels leave room for.
fn draw_ticks(out: &mut String, layout: &Layout, axis: &Axis, lanes_bottom: f64) {
    let mut free_from = f64::MIN;
    for (&instant, &x) in layout.instants.iter().zip(&layout.xs) {
        let label = axis.tick(instant);
        let half_width = label.chars().count() as f64 * CHAR_WIDTH / 2.0;
        if x - half_width < free_from {
            continue;
        }
        free_from = x + half_width + LABEL_PADDING;
        let _ = writeln!(
            out,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"12\">{label}</text><line class=\"grid\" x1=\"{x:.1}\" y1=\"15\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.0}\"/>"
        );
    }
}

/// Where one bar goes, in pixels.
struct Bar {
    x: f64,
    y: f64,
    width: f64,
}

fn draw_bar<M: Model>(
    out: &mut String,
    model: &M,
    operation: &M::Operation,
    mark: Mark,
    due: bool,
    bar: Bar,
) {
    let (class, note) = match mark {
        Mark::Placed(position) => ("placed", format!("takes effect {}", ordinal(position))),
        Mark::Stuck(StuckReason::Impossible) => {
            ("stuck", "cannot come next: impossible there".to_owned())
        }
        Mark::Stuck(StuckReason::DeadEnd) => {
            ("stuck", "cannot come next: nothing works after it".to_owned())
        }
        Mark::Unreachable => (
            "stuck",
            "can never be allowed: nothing that may come first leaves what it read".to_owned(),
        ),
        Mark::Unplaced => ("unplaced", "not placed".to_owned()),
    };
    let returned = operation.ret();
    let when = match returned {
        Some(ret) => format!("called {}, returned {ret}", operation.call()),
        None => format!("called {}, never returned", operation.call()),
    };
    let due_note = if due { "; it returned first, so it must come next at the latest" } else { "" };
    let Bar { x, y, width } = bar;
    let _ = write!(
        out,
        "<g class=\"op {class}{}{}\"><title>op {}, client {}, {when}\n{}\n{note}{due_note}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT}\" rx=\"3\"/>",
        if returned.is_none() { " open" } else { "" },
        if due { " due" } else { "" },
        operation.id(),
        operation.client(),
        escape(&model.describe_operation(operation)),
    );
    // A bar widened for its label has exactly its room, give or take rounding.
    let room = ((width - LABEL_PADDING) / CHAR_WIDTH + 0.01).floor().max(0.0) as usize;
    if let Some(label) = fit(&model.label(operation), room) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 3.0,
            y + BAR_HEIGHT - 3.5,
            escape(&label)
        );
    }
    out.push_str("</g>\n");
}

/// `label` cut to `room` characters, ending with an ellipsis if cut; nothing if not even two
/// characters fit.
fn fit(label: &str, room: usize) -> Option<String> {
    if room < 2 {
        return None;
    }
    if label.chars().count() <= room {
        return Some(label.to_owned());
    }
    let mut cut: String = label.chars().take(room - 1).collect();
    cut.push('…');
    Some(cut)
}

/// The mark of every operation that the partition places or blames.
fn marks(partition: &PartitionReport) -> HashMap<usize, Mark> {
    let mut marks = HashMap::new();
    let placed: &[usize] = match &partition.outcome {
        PartitionOutcome::Linearizable { order } => order,
        PartitionOutcome::NotLinearizable(violation) => {
            if let Some(read) = &violation.unreachable {
                marks.insert(read.index, Mark::Unreachable);
            }
            for stuck in &violation.stuck {
                marks.insert(stuck.operation.index, Mark::Stuck(stuck.reason));
            }
            for (position, operation) in violation.prefix.iter().enumerate() {
                marks.insert(operation.index, Mark::Placed(position + 1));
            }
            &[]
        }
        PartitionOutcome::TimedOut | PartitionOutcome::Skipped => &[],
    };
    for (position, &op) in placed.iter().enumerate() {
        marks.insert(op, Mark::Placed(position + 1));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::Page;
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
        let marks = marks(&report.partitions[0]);
        let expected = [
            (0, Mark::Placed(1)),
            (1, Mark::Placed(2)),
            (2, Mark::Placed(3)),
            (3, Mark::Stuck(StuckReason::Impossible)),
        ];
        assert_eq!(marks, HashMap::from(expected));
        let mut page = Page::new();
        page.add_history("a <bad> history", &KvModel, &history, &report);
        let html = page.finish();
        assert!(html.contains("a &lt;bad&gt; history"));
        assert!(html.contains("class=\"op stuck due\""));
        assert!(html.contains("Time in ns after the first call drawn"), "the axis has a unit");
        assert!(!html.contains("http:") && !html.contains("https:"), "no external resources");
    }

    #[test]
    fn labels_are_cut_to_their_bar() {
        assert_eq!(fit("put a", 20).as_deref(), Some("put a"));
        assert_eq!(fit("put abcdef", 8).as_deref(), Some("put abc…"));
        assert_eq!(fit("put a", 1), None);
    }
}

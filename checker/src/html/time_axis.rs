//! The time axis of a drawing: which unit the history's times are in, and how its ticks read.

use std::str::FromStr;

/// The unit of a history's times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Nanoseconds: what `raftkv bench` and `raftkv-sim` write.
    Nanos,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
    /// Line numbers of the file: formats that record no clock (Porcupine's and Jepsen's
    /// logs) keep only the order of events.
    Lines,
}

/// An axis shows the largest unit of which its span holds this many: short labels, and
/// integers but for the shortest spans.
const TICKS_PER_SPAN: f64 = 100.0;

/// The units an axis may show, with their length in nanoseconds.
const SHOWN_UNITS: [(&str, f64); 4] = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)];

impl TimeUnit {
    /// Every unit, by its command-line name.
    pub const ALL: [TimeUnit; 5] =
        [TimeUnit::Nanos, TimeUnit::Micros, TimeUnit::Millis, TimeUnit::Seconds, TimeUnit::Lines];

    /// `ns`, `us`, `ms`, `s` or `lines`.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Nanos => "ns",
            TimeUnit::Micros => "us",
            TimeUnit::Millis => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Lines => "lines",
        }
    }

    fn nanos(self) -> Option<f64> {
        match self {
            TimeUnit::Nanos => Some(1.0),
            TimeUnit::Micros => Some(1e3),
            TimeUnit::Millis => Some(1e6),
            TimeUnit::Seconds => Some(1e9),
            TimeUnit::Lines => None,
        }
    }
}

impl FromStr for TimeUnit {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        TimeUnit::ALL
            .into_iter()
            .find(|unit| unit.name() == name)
            .ok_or_else(|| format!("unknown time unit {name:?}: ns, us, ms, s or lines"))
    }
}

/// How the ticks of one drawing read: times after its first instant, in a unit that suits
/// its span.
pub(super) struct Axis {
    origin: u64,
    /// The shown unit's name and length in the history's unit, and the length of the
    /// history's unit in nanoseconds; `None` for line numbers, shown as they are.
    scale: Option<(&'static str, f64, f64)>,
}

impl Axis {
    /// The axis of a drawing whose instants go from `first` to `last`, in `unit`.
    pub(super) fn new(unit: TimeUnit, first: u64, last: u64) -> Axis {
        let scale = unit.nanos().map(|unit_nanos| {
            let span_nanos = last.saturating_sub(first) as f64 * unit_nanos;
            let (name, nanos) = SHOWN_UNITS
                .into_iter()
                .rev()
                .find(|&(_, nanos)| span_nanos >= TICKS_PER_SPAN * nanos)
                .unwrap_or(SHOWN_UNITS[0]);
            (name, nanos / unit_nanos, unit_nanos)
        });
        Axis { origin: first, scale }
    }

    /// The label of the tick at `time`.
    pub(super) fn tick(&self, time: u64) -> String {
        match self.scale {
            Some((_, length, _)) => short_number(time.saturating_sub(self.origin) as f64 / length),
            None => time.to_string(),
        }
    }

    /// What the axis shows, as a sentence.
    pub(super) fn caption(&self) -> String {
        const NOT_TO_SCALE: &str = "not to scale: the axis keeps only the order of calls and \
                                    returns, one step each, so that bursts and pauses read alike";
        match self.scale {
            Some((name, _, unit_nanos)) => format!(
                "Time in {name} after the first call drawn (which is at {} in the history); \
                 {NOT_TO_SCALE}.",
                readable_duration(self.origin as f64 * unit_nanos)
            ),
            None => {
                format!("Time: line of the file (this format records no clock); {NOT_TO_SCALE}.")
            }
        }
    }
}

/// Three or four significant digits (all of them past 1000), without trailing zeros.
fn short_number(value: f64) -> String {
    let decimals = match value.abs() {
        at_least_100 if at_least_100 >= 100.0 => 0,
        at_least_10 if at_least_10 >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `nanos` in the largest unit of which it holds at least one, e.g. `352.9 s`.
fn readable_duration(nanos: f64) -> String {
    let (name, length) = SHOWN_UNITS
        .into_iter()
        .rev()
        .find(|&(_, length)| nanos >= length)
        .unwrap_or(SHOWN_UNITS[0]);
    format!("{} {name}", short_number(nanos / length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_count_from_the_first_instant_in_a_unit_that_suits_the_span() {
        let axis = Axis::new(TimeUnit::Nanos, 180_000_000_000, 180_200_000_000);
        assert_eq!(axis.tick(180_012_500_000), "12.5");
        assert!(
            axis.caption().starts_with("Time in ms after the first call drawn (which is at 180 s ")
        );
        assert_eq!(axis.tick(180_000_001_234), "0");
        assert_eq!(axis.tick(180_151_234_000), "151");
        let axis = Axis::new(TimeUnit::Micros, 0, 300_000_000);
        assert_eq!(axis.tick(1_500_000), "1.5");
        assert!(axis.caption().starts_with("Time in s "));
        let axis = Axis::new(TimeUnit::Nanos, 5, 5);
        assert_eq!(axis.tick(5), "0");
        assert!(axis.caption().starts_with("Time in ns "));
        let axis = Axis::new(TimeUnit::Lines, 10, 90);
        assert_eq!(axis.tick(42), "42");
        assert!(axis.caption().starts_with("Time: line of the file"));
    }

    #[test]
    fn unit_names_round_trip() {
        for unit in TimeUnit::ALL {
            assert_eq!(unit.name().parse::<TimeUnit>(), Ok(unit));
        }
        assert!("hours".parse::<TimeUnit>().is_err());
    }
}

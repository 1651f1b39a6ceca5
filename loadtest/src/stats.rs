//! Measurements: latency histograms (HdrHistogram, microseconds), their summaries, errors by
//! kind and the per-second time series.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded: 10 minutes (in µs); longer ones are clamped.
const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Option<Histogram<u64>>,
}

impl Latency {
    /// An empty histogram with `sigfig` significant decimal digits (1–5; 3 for totals, 2 for the
    /// per-second series, which keeps them small).
    #[must_use]
    pub fn new(sigfig: u8) -> Self {
        // Only fails for bounds or sigfig out of range, which are constants here; a missing
        // histogram records nothing rather than stopping a run.
        Self {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, sigfig.clamp(1, 5)).ok(),
        }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        if let Some(histogram) = &mut self.histogram {
            let _ = histogram.record(micros);
        }
    }

    /// Adds another histogram's values.
    pub fn add(&mut self, other: &Self) {
        if let (Some(histogram), Some(other)) = (&mut self.histogram, &other.histogram) {
            let _ = histogram.add(other);
        }
    }

    /// Number of values.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.histogram.as_ref().map_or(0, Histogram::len)
    }

    /// The value at a quantile, in milliseconds (0 when empty).
    #[must_use]
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        match &self.histogram {
            Some(histogram) if !histogram.is_empty() => {
                micros_to_ms(histogram.value_at_quantile(quantile))
            }
            _ => 0.0,
        }
    }

    /// The summary: count, p50, p90, p99, p99.9, max and mean in milliseconds.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let (max, mean) = match &self.histogram {
            Some(histogram) if !histogram.is_empty() => {
                (micros_to_ms(histogram.max()), histogram.mean() / 1000.0)
            }
            _ => (0.0, 0.0),
        };
        Summary {
            count: self.count(),
            p50_ms: self.quantile_ms(0.5),
            p90_ms: self.quantile_ms(0.9),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            max_ms: max,
            mean_ms: round3(mean),
        }
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    // Latencies are far below 2^53 µs: the conversion is exact.
    round3(micros as f64 / 1000.0)
}

/// Rounds to three decimals (microsecond resolution of milliseconds).
#[must_use]
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// What went wrong with a request (keys of `errors` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The generator's own concurrency cap was reached: the arrival was not sent.
    ClientOverload,
    /// 503 `overloaded`: the server's admission control refused it.
    Admission503,
    /// 503 `timeout`: not acknowledged within the server's command timeout.
    ServerTimeout503,
    /// Any other 5xx.
    Http5xx,
    /// Any 4xx.
    Http4xx,
    /// No answer within the client's request timeout.
    Timeout,
    /// The TCP connection could not be made.
    Connect,
    /// Another transport or decoding failure.
    Transport,
    /// A conversation's WebSocket could not be opened.
    WebSocket,
    /// A virtual agent's request failed.
    Agent,
}

impl ErrorKind {
    /// The report key.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::ClientOverload => "client_overload",
            Self::Admission503 => "admission_503",
            Self::ServerTimeout503 => "server_timeout_503",
            Self::Http5xx => "http_5xx",
            Self::Http4xx => "http_4xx",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Transport => "transport",
            Self::WebSocket => "websocket",
            Self::Agent => "agent",
        }
    }

    /// Whether it concerns a customer message (counted against the offered load).
    #[must_use]
    pub fn is_message_error(self) -> bool {
        !matches!(self, Self::WebSocket | Self::Agent)
    }

    /// Whether another node of a cluster might answer where this one failed: no connection, no
    /// answer in time, a server error. Not the admission's `overloaded` (load is shed, not moved).
    #[must_use]
    pub fn worth_another_node(self) -> bool {
        matches!(
            self,
            Self::Connect
                | Self::Timeout
                | Self::Transport
                | Self::Http5xx
                | Self::ServerTimeout503
        )
    }

    /// The kind of an HTTP answer that was not a success, from its status and error code.
    #[must_use]
    pub fn from_status(status: u16, code: Option<&str>) -> Self {
        match (status, code) {
            (503, Some("overloaded")) => Self::Admission503,
            (503, Some("timeout")) => Self::ServerTimeout503,
            (500..=599, _) => Self::Http5xx,
            _ => Self::Http4xx,
        }
    }
}

/// Counts by error kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors {
    counts: BTreeMap<ErrorKind, u64>,
}

impl Errors {
    /// Counts one error.
    pub fn add(&mut self, kind: ErrorKind) {
        *self.counts.entry(kind).or_default() += 1;
    }

    /// How many of a kind.
    #[must_use]
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Errors of customer messages (every kind but WebSocket and agent errors).
    #[must_use]
    pub fn message_errors(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(kind, _)| kind.is_message_error())
            .map(|(_, count)| count)
            .sum()
    }

    /// Every error.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// `{key: count}` with every kind present (zeros included), for stable reports.
    #[must_use]
    pub fn to_map(&self) -> BTreeMap<&'static str, u64> {
        ALL_KINDS
            .iter()
            .map(|kind| (kind.key(), self.get(*kind)))
            .collect()
    }
}

/// Every error kind, in report order.
pub const ALL_KINDS: [ErrorKind; 10] = [
    ErrorKind::ClientOverload,
    ErrorKind::Admission503,
    ErrorKind::ServerTimeout503,
    ErrorKind::Http5xx,
    ErrorKind::Http4xx,
    ErrorKind::Timeout,
    ErrorKind::Connect,
    ErrorKind::Transport,
    ErrorKind::WebSocket,
    ErrorKind::Agent,
];

/// One second of the run.
#[derive(Debug, Clone)]
pub struct Second {
    /// Arrivals due in this second (the offered load).
    pub offered: u64,
    /// Messages acknowledged in this second.
    pub acked: u64,
    /// Message errors in this second.
    pub errors: u64,
    /// Acknowledgement latencies of messages acknowledged in this second.
    pub ack: Latency,
    /// Bot-reply latencies of replies seen in this second.
    pub bot_reply: Latency,
}

impl Default for Second {
    fn default() -> Self {
        Self {
            offered: 0,
            acked: 0,
            errors: 0,
            ack: Latency::new(2),
            bot_reply: Latency::new(2),
        }
    }
}

/// A point of the time series in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondPoint {
    /// Seconds since the start.
    pub t: u64,
    /// Arrivals offered in this second.
    pub offered: u64,
    /// Messages acknowledged in this second.
    pub achieved: u64,
    /// Message errors in this second.
    pub errors: u64,
    /// Acknowledgement p50 (ms).
    pub ack_p50_ms: f64,
    /// Acknowledgement p99 (ms).
    pub ack_p99_ms: f64,
    /// Bot-reply p50 (ms).
    pub bot_reply_p50_ms: f64,
    /// Bot-reply p99 (ms).
    pub bot_reply_p99_ms: f64,
}

/// The per-second series.
#[derive(Debug, Clone, Default)]
pub struct Series {
    seconds: Vec<Second>,
}

impl Series {
    /// The bucket of second `t` (created on demand, at most one day).
    pub fn at(&mut self, t: Duration) -> &mut Second {
        let index = usize::try_from(t.as_secs())
            .unwrap_or(usize::MAX)
            .min(86_400);
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Second::default);
        }
        &mut self.seconds[index]
    }

    /// The points for the report and the plot.
    #[must_use]
    pub fn points(&self) -> Vec<SecondPoint> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(t, second)| SecondPoint {
                t: t as u64,
                offered: second.offered,
                achieved: second.acked,
                errors: second.errors,
                ack_p50_ms: second.ack.quantile_ms(0.5),
                ack_p99_ms: second.ack.quantile_ms(0.99),
                bot_reply_p50_ms: second.bot_reply.quantile_ms(0.5),
                bot_reply_p99_ms: second.bot_reply.quantile_ms(0.99),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut latency = Latency::new(3);
        for millis in 1..=1000_u64 {
            latency.record(Duration::from_millis(millis));
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 1000);
        // 3 significant digits: within 0.1 %.
        let close =
            |value: f64, expected: f64| (value - expected).abs() <= expected * 0.001 + 0.001;
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p90_ms, 900.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.p999_ms, 999.0), "{summary:?}");
        assert!(close(summary.max_ms, 1000.0), "{summary:?}");
        assert!(close(summary.mean_ms, 500.5), "{summary:?}");
    }

    #[test]
    fn empty_summary_is_zero_and_add_merges() {
        let empty = Latency::new(3);
        assert_eq!(empty.summary().count, 0);
        assert!(empty.summary().p99_ms.abs() < f64::EPSILON);
        let mut total = Latency::new(3);
        let mut part = Latency::new(2);
        part.record(Duration::from_micros(1500));
        part.record(Duration::from_secs(3600));
        total.add(&part);
        assert_eq!(total.count(), 2);
        // clamped to the 10-minute ceiling rather than lost
        assert!(total.summary().max_ms >= 599_000.0);
    }

    #[test]
    fn error_kinds_from_status() {
        assert_eq!(
            ErrorKind::from_status(503, Some("overloaded")),
            ErrorKind::Admission503
        );
        assert_eq!(
            ErrorKind::from_status(503, Some("timeout")),
            ErrorKind::ServerTimeout503
        );
        assert_eq!(
            ErrorKind::from_status(503, Some("journal_unavailable")),
            ErrorKind::Http5xx
        );
        assert_eq!(ErrorKind::from_status(422, None), ErrorKind::Http4xx);
        let mut errors = Errors::default();
        errors.add(ErrorKind::ClientOverload);
        errors.add(ErrorKind::ClientOverload);
        errors.add(ErrorKind::Agent);
        assert_eq!(errors.message_errors(), 2);
        assert_eq!(errors.total(), 3);
        let map = errors.to_map();
        assert_eq!(map.len(), ALL_KINDS.len());
        assert_eq!(map["client_overload"], 2);
        assert_eq!(map["timeout"], 0);
    }

    #[test]
    fn series_grows_by_second() {
        let mut series = Series::default();
        series.at(Duration::from_millis(2500)).acked += 3;
        series.at(Duration::from_millis(100)).offered += 1;
        let points = series.points();
        assert_eq!(points.len(), 3);
        assert_eq!(points[0].offered, 1);
        assert_eq!(points[2].achieved, 3);
    }
}

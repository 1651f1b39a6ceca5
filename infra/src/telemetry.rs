//! The node's Prometheus registry and the metrics of the HTTP edge.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// HTTP and admission metrics, plus the registry every component registers into.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The node's registry (`GET /metrics` exposes it).
    pub registry: Registry,
    /// Requests by route template, method and status code.
    pub http_requests: IntCounterVec,
    /// Request duration by route template and method.
    pub http_seconds: HistogramVec,
    /// Commands refused by admission control, by reason.
    pub admission_rejections: IntCounterVec,
    /// Commands currently admitted and not yet answered.
    pub commands_in_flight: IntGauge,
}

impl Telemetry {
    /// A fresh registry with process metrics, build info and the HTTP metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = IntGauge::with_opts(
            Opts::new("crest_build_info", "Build information; always 1.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build_info.set(1);
        registry.register(Box::new(build_info))?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "crest_http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "crest_http_request_seconds",
                "HTTP request duration by route and method.",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                10.0,
            ]),
            &["route", "method"],
        )?;
        let admission_rejections = IntCounterVec::new(
            Opts::new(
                "crest_admission_rejections_total",
                "Commands refused by admission control, by reason.",
            ),
            &["reason"],
        )?;
        let commands_in_flight = IntGauge::new(
            "crest_commands_in_flight",
            "Commands admitted and not yet answered.",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        registry.register(Box::new(admission_rejections.clone()))?;
        registry.register(Box::new(commands_in_flight.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_seconds,
            admission_rejections,
            commands_in_flight,
        })
    }

    /// Counts one command in [`Telemetry::commands_in_flight`] until the returned guard is dropped:
    /// when the command is answered, fails, or its request is cancelled (the client went away).
    pub fn command_in_flight(&self) -> InFlight<'_> {
        InFlight::enter(&self.commands_in_flight)
    }

    /// The Prometheus text exposition of every registered metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buffer = String::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buffer)
        {
            tracing::warn!(%error, "metrics encoding failed");
        }
        buffer
    }
}

/// One unit of a gauge of things in flight, held while the thing is: increments the gauge when
/// created and decrements it when dropped, so an early return or a cancelled request never leaves
/// the gauge too high.
#[derive(Debug)]
#[must_use = "the gauge counts the command only while the guard lives"]
pub struct InFlight<'gauge> {
    gauge: &'gauge IntGauge,
}

impl<'gauge> InFlight<'gauge> {
    /// Adds one to `gauge` until the guard is dropped.
    pub fn enter(gauge: &'gauge IntGauge) -> Self {
        gauge.inc();
        Self { gauge }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Telemetry;

    #[test]
    fn a_command_counts_while_its_guard_lives() {
        let telemetry = Telemetry::new().expect("metrics register");
        let first = telemetry.command_in_flight();
        let second = telemetry.command_in_flight();
        assert_eq!(telemetry.commands_in_flight.get(), 2);
        drop(first);
        assert_eq!(telemetry.commands_in_flight.get(), 1);
        drop(second);
        assert_eq!(telemetry.commands_in_flight.get(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_command_leaves_the_gauge() {
        let telemetry = Telemetry::new().expect("metrics register");
        let command = async {
            let _in_flight = telemetry.command_in_flight();
            std::future::pending::<()>().await;
        };
        let cancelled = tokio::time::timeout(Duration::from_millis(1), command).await;
        assert!(cancelled.is_err(), "the command never finishes");
        assert_eq!(
            telemetry.commands_in_flight.get(),
            0,
            "dropped with its future"
        );
    }
}

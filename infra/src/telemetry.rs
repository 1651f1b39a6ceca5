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

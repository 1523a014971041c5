//! Prometheus metrics: request counts and latencies by route pattern (never raw paths, so
//! ids do not explode the label space), webhook outcomes, and live actors.

use std::sync::Arc;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// The metrics registry and its series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Requests by method, route pattern and status.
    pub requests: IntCounterVec,
    /// Request latency by method and route pattern.
    pub latency: HistogramVec,
    /// Webhook outcomes by provider and outcome code.
    pub webhooks: IntCounterVec,
}

impl Metrics {
    /// Registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("switchboard_http_requests_total", "HTTP requests"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("switchboard_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["method", "route"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new("switchboard_webhooks_total", "Webhook deliveries by outcome"),
            &["provider", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        Ok(Self { registry: Arc::new(registry), requests, latency, webhooks })
    }

    /// The text exposition of every series plus `extra` gauges computed at scrape time.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut text = String::from_utf8(buf).unwrap_or_default();
        for (name, help, value) in extra {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
        text
    }
}

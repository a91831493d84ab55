//! The counters behind `/metrics` that are kept as things happen: HTTP
//! requests (counted by `api::metrics::http`, the layer around every
//! route), Socket.IO events and their acknowledgement latency
//! ([`signalling`]), and the open connections `serve` keeps. The page
//! itself, with the figures read at scrape time, is `api::metrics`; the
//! families are listed in docs/operations.md.
//!
//! Cardinality is bounded: labels are route templates, event names from a
//! fixed list, status classes and error codes — never a room, a user or a
//! raw path.

pub mod signalling;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::tls::CertResolver;

/// Latency buckets (seconds) of HTTP requests and Socket.IO acks.
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    /// The route's template (`/api/v1/rooms/{id}`), `other` for the web
    /// app's fallback and unknown paths.
    pub route: String,
    /// `2xx` … `5xx`.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
    /// `ok`, or the error code of the acknowledgement.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventName {
    pub event: &'static str,
}

/// Counters kept as things happen, and the handles the scrape reads.
#[derive(Debug)]
pub struct Metrics {
    /// TCP connections open (HTTP and websockets).
    pub open_connections: Arc<AtomicUsize>,
    /// Authenticated Socket.IO connections.
    pub signalling_connections: AtomicUsize,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: LatencyFamily<RouteLabels>,
    events: Family<EventLabels, Counter>,
    ack_duration: LatencyFamily<EventName>,
    /// The certificate HTTPS serves, when on (set once at start).
    tls: OnceLock<Arc<CertResolver>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            open_connections: Arc::default(),
            signalling_connections: AtomicUsize::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            events: Family::default(),
            ack_duration: Family::new_with_constructor(latency_histogram),
            tls: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Exports the expiry of the certificate `resolver` serves.
    pub fn watch_certificate(&self, resolver: Arc<CertResolver>) {
        let _ = self.tls.set(resolver);
    }

    /// The certificate HTTPS serves, if on.
    pub fn certificate(&self) -> Option<&Arc<CertResolver>> {
        self.tls.get()
    }

    /// One HTTP request answered: `route` is its template.
    pub fn http_request(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status: status_class(status),
            })
            .inc();
    }

    /// Adds the families kept here to a scrape's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "vtp_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            self.http_requests.clone(),
        );
        registry.register(
            "vtp_http_request_duration_seconds",
            "Time to the response's head, by method and route template.",
            self.http_duration.clone(),
        );
        registry.register(
            "vtp_signalling_events",
            "Socket.IO events answered, by event name and result (ok or the error code).",
            self.events.clone(),
        );
        registry.register(
            "vtp_signalling_ack_duration_seconds",
            "Time from an event's arrival to its acknowledgement, by event name.",
            self.ack_duration.clone(),
        );
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(599), "5xx");
    }
}

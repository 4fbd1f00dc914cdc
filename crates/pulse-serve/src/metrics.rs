//! Request counts and latency histograms per route, as Prometheus text (lock-free counters).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];
/// Statuses counted individually; anything else is counted as "other".
const STATUSES: [u16; 10] = [200, 400, 401, 404, 405, 408, 413, 415, 422, 500];

struct Route {
    name: &'static str,
    status: [AtomicU64; STATUSES.len() + 1],
    buckets: [AtomicU64; BUCKETS.len()],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

pub struct Metrics {
    routes: Vec<Route>,
}

impl Metrics {
    /// `routes`: the route templates served (requests matching none are counted as "unmatched").
    pub fn new(routes: &[&'static str]) -> Metrics {
        let routes = routes
            .iter()
            .chain(std::iter::once(&"unmatched"))
            .map(|&name| Route {
                name,
                status: Default::default(),
                buckets: Default::default(),
                sum_ns: AtomicU64::new(0),
                count: AtomicU64::new(0),
            })
            .collect();
        Metrics { routes }
    }

    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        let r = self.routes.iter().find(|r| r.name == route).unwrap_or_else(|| self.routes.last().expect("unmatched is always there"));
        let si = STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len());
        r.status[si].fetch_add(1, Relaxed);
        if let Some(b) = BUCKETS.iter().position(|&b| seconds <= b) {
            r.buckets[b].fetch_add(1, Relaxed);
        }
        r.sum_ns.fetch_add((seconds * 1e9) as u64, Relaxed);
        r.count.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, rss_bytes: Option<u64>) -> String {
        let mut s = String::new();
        s.push_str("# HELP pulse_http_requests_total HTTP requests by route template and status.\n");
        s.push_str("# TYPE pulse_http_requests_total counter\n");
        for r in &self.routes {
            for (i, c) in r.status.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let st = STATUSES.get(i).map_or("other".to_string(), |s| s.to_string());
                    s.push_str(&format!("pulse_http_requests_total{{route=\"{}\",status=\"{st}\"}} {n}\n", r.name));
                }
            }
        }
        s.push_str("# HELP pulse_http_request_duration_seconds Time from the request's arrival to its response, by route.\n");
        s.push_str("# TYPE pulse_http_request_duration_seconds histogram\n");
        for r in &self.routes {
            let count = r.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let mut cum = 0;
            for (b, c) in BUCKETS.iter().zip(&r.buckets) {
                cum += c.load(Relaxed);
                s.push_str(&format!("pulse_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{b}\"}} {cum}\n", r.name));
            }
            s.push_str(&format!("pulse_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {count}\n", r.name));
            s.push_str(&format!("pulse_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", r.name, r.sum_ns.load(Relaxed) as f64 / 1e9));
            s.push_str(&format!("pulse_http_request_duration_seconds_count{{route=\"{}\"}} {count}\n", r.name));
        }
        if let Some(b) = rss_bytes {
            s.push_str("# HELP pulse_process_resident_memory_bytes Resident memory of the server process.\n");
            s.push_str("# TYPE pulse_process_resident_memory_bytes gauge\n");
            s.push_str(&format!("pulse_process_resident_memory_bytes {b}\n"));
        }
        s
    }
}

/// Resident memory of this process now (Linux VmRSS), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

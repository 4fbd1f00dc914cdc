//! Load generator for `bench/serve/run.sh`: C keep-alive connections POST request bodies (JSON lines, one
//! per line of --bodies, taken round-robin from a different start per connection) to one path for a fixed
//! time after a warm-up, and print one JSON line: requests, errors, req/s, p50/p99/p999 latency (ms).
//! Loopback only: the address must be a loopback one.
use pulse_serve::client::Client;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = arg(&args, "--addr", "127.0.0.1:8080").parse().expect("--addr");
    assert!(addr.ip().is_loopback(), "--addr {addr}: load tests target loopback only");
    let conns: usize = arg(&args, "--connections", "16").parse().expect("--connections");
    let secs: f64 = arg(&args, "--seconds", "10").parse().expect("--seconds");
    let warm: f64 = arg(&args, "--warmup", "2").parse().expect("--warmup");
    let path = arg(&args, "--path", "/v1/recommend");
    let threads: usize = arg(&args, "--threads", "1").parse().expect("--threads");
    let bodies_file = arg(&args, "--bodies", "");
    let text = std::fs::read_to_string(&bodies_file).unwrap_or_else(|e| panic!("--bodies {bodies_file}: {e}"));
    let bodies: Vec<Vec<u8>> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.as_bytes().to_vec()).collect();
    assert!(!bodies.is_empty(), "--bodies {bodies_file}: no lines");
    let bodies = std::sync::Arc::new(bodies);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let out = rt.block_on(async move {
        let start = Instant::now() + Duration::from_secs_f64(warm);
        let end = start + Duration::from_secs_f64(secs);
        let mut tasks = vec![];
        for c in 0..conns {
            let bodies = bodies.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let mut cl = Client::connect(addr).await.expect("connect");
                let (mut lat, mut errors, mut i) = (Vec::<u32>::with_capacity(1 << 16), 0usize, c * 7919);
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    let b = &bodies[i % bodies.len()];
                    i += 1;
                    let ok = match cl.post(&path, b).await {
                        Ok(r) => r.status == 200,
                        Err(_) => {
                            cl = Client::connect(addr).await.expect("reconnect");
                            false
                        }
                    };
                    if t >= start {
                        if ok {
                            lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = vec![];
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        (all, errors)
    });
    let (mut lat, errors) = out;
    lat.sort_unstable();
    let n = lat.len();
    println!(
        "{}",
        serde_json::json!({
            "connections": conns, "seconds": secs, "requests": n, "errors": errors,
            "rps": n as f64 / secs, "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99), "p999_ms": pct(&lat, 0.999),
            "client_threads": threads,
        })
    );
}

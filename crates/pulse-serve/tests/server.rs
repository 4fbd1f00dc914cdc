//! A real server on loopback (the fixture bundle, the real engine, a real TCP client).
use pulse_recommend::fixture::write_tiny;
use pulse_recommend::Engine;
use pulse_serve::client::Client;
use pulse_serve::{check_bind, router, AppState, MAX_BODY_BYTES};
use std::net::SocketAddr;
use std::sync::Arc;

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(token: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b");
    write_tiny(&b, 40, 3).unwrap();
    let engine = Arc::new(Engine::load(&b).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(AppState::new(engine, token.map(String::from)), MAX_BODY_BYTES);
    let done = tokio::spawn(pulse_serve::serve(listener, app, async move {
        let _ = rx.await;
    }));
    Server { addr, stop: Some(tx), done, _dir: dir }
}

impl Server {
    async fn client(&self) -> Client {
        Client::connect(self.addr).await.unwrap()
    }
    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_search_items_health() {
    let s = start(None).await;
    let mut c = s.client().await;
    let r = c.get("/healthz").await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = c.get("/readyz").await.unwrap();
    assert_eq!(r.json()["ready"], true);
    assert_eq!(r.json()["items"], 40);

    let r = c.post("/v1/recommend", br#"{"history": ["I001", "I002", "I003"], "k": 10}"#).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert_eq!(j["model"], "pulse-ts");
    assert_eq!(j["history"].as_array().unwrap().len(), 3);
    for it in items {
        assert!(!it["reason"].as_str().unwrap().is_empty());
        assert!(it["evidence"]["source"] == "parts");
        assert!(!["I001", "I002", "I003"].contains(&it["id"].as_str().unwrap()));
    }
    let r = c.post("/v1/recommend", br#"{"user": "U05", "k": 3, "model": "hybrid", "leave_one_out": true}"#).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    assert_eq!(r.json()["items"][0]["evidence"]["source"], "leave-one-out");
    let r = c.get("/v1/users/U05/recommendations?k=4&model=hybrid").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"], "U05");
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 4);

    let r = c.get("/v1/items?q=rose%20serum&limit=5").await.unwrap();
    assert_eq!(r.status, 200);
    let hits = r.json()["items"].as_array().unwrap().clone();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| { let t = h["title"].as_str().unwrap().to_lowercase(); t.contains("rose") && t.contains("serum") }));
    let r = c.get("/v1/items/I002").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], "I002");
    assert!(r.json()["bought_with"].is_array());
    let r = c.get("/v1/map").await.unwrap();
    assert_eq!(r.json()["x"].as_array().unwrap().len(), 40);

    // the page: served as HTML, and no catalogue string is ever put into it as markup
    let r = c.get("/").await.unwrap();
    assert!(r.content_type.starts_with("text/html"));
    let page = r.text();
    assert!(!page.contains("innerHTML") && !page.contains("insertAdjacentHTML") && !page.contains("document.write"));

    // metrics count what was served, per route template
    let m = c.get("/metrics").await.unwrap().text();
    assert!(m.contains("pulse_http_requests_total{route=\"/v1/recommend\",status=\"200\"} 2"), "{m}");
    assert!(m.contains("pulse_http_requests_total{route=\"/v1/users/{id}/recommendations\",status=\"200\"} 1"), "{m}");
    assert!(m.contains("pulse_http_request_duration_seconds_count{route=\"/v1/recommend\"} 2"), "{m}");
    assert!(m.contains("pulse_process_resident_memory_bytes "));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let s = start(None).await;
    let mut c = s.client().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("k 0", br#"{"history": ["I001"], "k": 0}"#.to_vec(), 422, "k: 0"),
        ("k 101", br#"{"history": ["I001"], "k": 101}"#.to_vec(), 422, "outside 1..=100"),
        ("unknown ids", br#"{"history": ["I001", "NOPE", "ALSO"]}"#.to_vec(), 422, "unknown item ids NOPE, ALSO"),
        ("unknown user", br#"{"user": "nobody"}"#.to_vec(), 404, "unknown user"),
        ("both", br#"{"user": "U01", "history": ["I001"]}"#.to_vec(), 422, "not both"),
        ("neither", br#"{"k": 5}"#.to_vec(), 422, "give user or history"),
        ("empty history", br#"{"history": []}"#.to_vec(), 422, "empty"),
        ("long history", format!("{{\"history\": [{}]}}", vec!["\"I001\""; 201].join(",")).into_bytes(), 422, "at most 200"),
        ("bad model", br#"{"history": ["I001"], "model": "gpt"}"#.to_vec(), 422, "model"),
        ("unknown field", br#"{"history": ["I001"], "kk": 3}"#.to_vec(), 422, "unknown field"),
        ("wrong type", br#"{"history": "I001"}"#.to_vec(), 422, "history"),
        ("not json", b"{history".to_vec(), 400, ""),
        ("too big", format!("{{\"history\": [\"{}\"]}}", "x".repeat(MAX_BODY_BYTES)).into_bytes(), 413, ""),
    ];
    for (what, body, status, msg) in cases {
        let r = c.post("/v1/recommend", &body).await.unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let err = r.json()["error"].as_str().map(String::from).unwrap_or_else(|| panic!("{what}: not a JSON error: {}", r.text()));
        assert!(err.contains(msg), "{what}: {err}");
    }
    let r = c.request("POST", "/v1/recommend", None).await.unwrap();
    assert_eq!(r.status, 415, "no content type: {}", r.text());
    for (path, status) in [
        ("/v1/users/nobody/recommendations", 404),
        ("/v1/users/U01/recommendations?k=500", 422),
        ("/v1/users/U01/recommendations?k=abc", 400),
        ("/v1/items/NOPE", 404),
        ("/v1/items?q=rose&limit=0", 422),
        ("/no/such/route", 404),
    ] {
        let r = c.get(path).await.unwrap();
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{path}: {}", r.text());
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guards_the_api_not_health() {
    let s = start(Some("s3cret")).await;
    let mut c = s.client().await;
    assert_eq!(c.get("/healthz").await.unwrap().status, 200);
    assert_eq!(c.get("/").await.unwrap().status, 200);
    for path in ["/v1/items?q=rose", "/metrics", "/v1/info"] {
        assert_eq!(c.get(path).await.unwrap().status, 401, "{path}");
    }
    c.token = Some("wrong".into());
    assert_eq!(c.get("/v1/items?q=rose").await.unwrap().status, 401);
    c.token = Some("s3cret".into());
    assert_eq!(c.get("/v1/items?q=rose").await.unwrap().status, 200);
    // the scheme is case-insensitive (RFC 9110)
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: bearer s3cret\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(c.post("/v1/recommend", br#"{"history": ["I001"]}"#).await.unwrap().status, 200);
    s.shutdown().await;
}

#[test]
fn no_token_no_public_bind() {
    let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let err = check_bind(public, None).unwrap_err().to_string();
    assert!(err.contains("refusing to serve beyond loopback without a token"), "{err}");
    assert!(check_bind(public, Some("")).is_err());
    assert!(check_bind(public, Some("t")).is_ok());
    assert!(check_bind("127.0.0.1:8080".parse().unwrap(), None).is_ok());
    assert!(check_bind("[::1]:8080".parse().unwrap(), None).is_ok());
    // a token must be able to travel in a header
    assert!(check_bind("127.0.0.1:8080".parse().unwrap(), Some("two words")).is_err());
    assert!(check_bind("127.0.0.1:8080".parse().unwrap(), Some("clé")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let s = start(None).await;
    let mut c = s.client().await;
    assert_eq!(c.get("/healthz").await.unwrap().status, 200);
    let addr = s.addr;
    s.shutdown().await;
    assert!(Client::connect(addr).await.is_err() || Client::connect(addr).await.unwrap().get("/healthz").await.is_err(), "closed after shutdown");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let ids = prop::collection::vec(prop_oneof!["I0[0-3][0-9]", "[A-Za-z0-9<>\"\\\\ ]{0,8}"], 0..30);
        prop_oneof![
            // random bytes
            prop::collection::vec(any::<u8>(), 0..300),
            // JSON-shaped, with random fields and values
            (ids.clone(), any::<i64>(), any::<bool>(), prop::option::of("[a-z-]{0,9}"), prop::option::of("U[0-9]{1,3}")).prop_map(|(h, k, ex, m, u)| {
                let mut v = serde_json::json!({"history": h, "k": k, "exclude_history": ex});
                if let Some(m) = m { v["model"] = m.into(); }
                if let Some(u) = u { v["user"] = u.into(); }
                serde_json::to_vec(&v).unwrap()
            }),
            // valid requests
            (prop::collection::vec(0u32..40, 1..12), 1usize..=100, any::<bool>()).prop_map(|(h, k, loo)| {
                let ids: Vec<String> = h.iter().map(|i| format!("I{i:03}")).collect();
                serde_json::to_vec(&serde_json::json!({"history": ids, "k": k, "leave_one_out": loo, "model": if loo { "hybrid" } else { "pulse-ts" }})).unwrap()
            }),
        ]
    }

    #[test]
    fn random_bodies_never_break_the_server() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let s = rt.block_on(start(None));
        let c = std::cell::RefCell::new(rt.block_on(s.client()));
        let mut cfg = ProptestConfig::with_cases(300);
        cfg.failure_persistence = None;
        proptest!(cfg, |(b in body(), path in prop_oneof![Just("/v1/recommend".to_string()), "/v1/[a-z0-9/%?=&.]{0,20}"])| {
            let r = rt.block_on(c.borrow_mut().post(&path, &b)).expect("the connection stays up");
            prop_assert!(r.status < 500, "{} {}: {}", path, String::from_utf8_lossy(&b), r.text());
            if r.status == 200 {
                let j = r.json();
                prop_assert!(j["items"].is_array());
            } else {
                prop_assert!(r.json()["error"].is_string(), "{}", r.text());
            }
        });
        let r = rt.block_on(c.borrow_mut().get("/healthz")).unwrap();
        assert_eq!(r.status, 200);
        rt.block_on(s.shutdown());
    }
}

#[test]
fn openapi_document_has_not_drifted() {
    let want = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap_or_default();
    let got = pulse_serve::openapi_json();
    assert!(got == want, "docs/openapi.json is not what the types generate: run `cargo run --release --bin pulse -- serve --openapi > docs/openapi.json`");
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    for p in ["/v1/recommend", "/v1/users/{id}/recommendations", "/v1/items", "/v1/items/{id}", "/v1/map", "/metrics", "/readyz"] {
        assert!(v["paths"][p].is_object(), "{p} documented");
    }
    assert!(v["components"]["schemas"]["Recommendation"].is_object() && v["components"]["schemas"]["Evidence"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_swagger_are_served_without_downloads() {
    let s = start(None).await;
    let mut c = s.client().await;
    let r = c.get("/openapi.json").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::from_str::<serde_json::Value>(&pulse_serve::openapi_json()).unwrap());
    let r = c.get("/docs/").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("swagger"), "the Swagger UI page");
    let r = c.get("/docs/swagger-ui-bundle.js").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.len() > 100_000, "the vendored bundle is served from the binary");
    s.shutdown().await;
}

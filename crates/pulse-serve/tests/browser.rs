//! The page in a real browser: Debian's headless Chromium driven through chromedriver (W3C WebDriver,
//! spoken over the same HTTP client the other tests use) against a real server. Load the page, search,
//! add two items, see ten recommendations with reasons, and check a title with markup stays text.
//!
//! `.ci/run` installs chromium + chromium-driver. PULSE_BUNDLE=DIR runs it on a real bundle (else the
//! fixture); PULSE_SCREENSHOT=FILE.png keeps a screenshot (how docs/img/serve-page.png is made).
use pulse_recommend::fixture::{write_tiny, SCRIPT_TITLE};
use pulse_recommend::Engine;
use pulse_serve::client::Client;
use pulse_serve::{router, AppState, MAX_BODY_BYTES};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    c: Client,
    session: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Driver {
    async fn start() -> Driver {
        let bin = ["chromedriver", "/usr/bin/chromedriver"].into_iter().find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
        let bin = bin.expect("chromedriver not found: apt-get install chromium chromium-driver (as .ci/run does)");
        let port = free_port();
        let child = Command::new(bin).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t = Instant::now();
        let mut c = loop {
            match Client::connect(addr).await {
                Ok(c) => break c,
                Err(_) if t.elapsed() < Duration::from_secs(20) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("chromedriver did not listen on {addr}: {e}"),
            }
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]}}}});
        let r = c.post("/session", caps.to_string().as_bytes()).await.unwrap();
        assert_eq!(r.status, 200, "new session: {}", r.text());
        let session = r.json()["value"]["sessionId"].as_str().expect("session id").to_string();
        Driver { c, session, child }
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        let b = body.map(|b| b.to_string());
        let r = self.c.request(method, &p, b.as_deref().map(str::as_bytes)).await.unwrap();
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        r.json()["value"].clone()
    }

    async fn js(&mut self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Polls `cond` (a JS expression) until true.
    async fn wait(&mut self, cond: &str, what: &str) {
        let t = Instant::now();
        while self.js(&format!("return !!({cond});")).await != Value::Bool(true) {
            assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&mut self, css: &str) -> String {
        let v = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    async fn type_into(&mut self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.call("POST", &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }

    async fn click(&mut self, css: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({}))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_search_add_two_see_ten_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::env::var_os("PULSE_BUNDLE").map(std::path::PathBuf::from);
    let b = match &real {
        Some(p) => p.clone(),
        None => {
            let b = dir.path().join("b");
            write_tiny(&b, 40, 5).unwrap();
            b
        }
    };
    let engine = Arc::new(Engine::load(&b).unwrap());
    // the two searches: on the fixture, the markup title and another; on a real bundle, words of two
    // real titles
    let queries: Vec<String> = if real.is_some() {
        std::env::var("PULSE_QUERIES").unwrap_or_else(|_| "shampoo;conditioner".into()).split(';').map(String::from).collect()
    } else {
        vec!["alert rose".into(), "argan".into()]
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pulse_serve::serve(listener, router(AppState::new(engine, None), MAX_BODY_BYTES), async move {
        let _ = rx.await;
    }));

    let mut d = Driver::start().await;
    d.call("POST", "/url", Some(json!({"url": format!("http://{addr}/")}))).await;
    d.wait("document.body.dataset.loaded === '1'", "the page to load").await;
    assert_eq!(d.js("return document.getElementById('error').textContent").await, "");
    assert!(d.js("return document.getElementById('info').textContent").await.as_str().unwrap().contains("items"));
    for q in &queries {
        d.type_into("#q", q).await;
        d.wait("document.querySelectorAll('#results li[data-id]').length > 0", "search results").await;
        d.click("#results li[data-id]").await;
    }
    d.wait("document.body.dataset.ready === '10'", "ten recommendations").await;
    let history = d.js("return [...document.querySelectorAll('#history li span')].map(s => s.textContent)").await;
    assert_eq!(history.as_array().unwrap().len(), 2, "two items in the history: {history}");
    let recs = d.js("return [...document.querySelectorAll('#recs li')].map(li => [li.querySelector('.title').textContent, li.querySelector('.reason').textContent])").await;
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 10);
    for r in recs {
        let reason = r[1].as_str().unwrap();
        assert!(reason.len() > 10 && reason.ends_with('.'), "a reason: {r}");
    }
    if real.is_none() {
        // the markup title was added by the first search: shown as text, never parsed
        assert_eq!(history[0], SCRIPT_TITLE);
        assert_eq!(d.js("return document.querySelectorAll('script').length").await, 1, "no script element was injected");
    }
    // hovering a recommendation highlights its evidence in the history
    d.js("document.querySelector('#recs li').dispatchEvent(new Event('mouseenter'))").await;
    let cited = d.js("return document.querySelectorAll('#history li.cited').length").await;
    let shown = d.js("return document.querySelectorAll('#recs li.active .ev span.cite').length").await;
    assert_eq!(cited, shown, "the first recommendation's cited items are the highlighted history items");
    if let Some(png) = std::env::var_os("PULSE_SCREENSHOT") {
        use std::io::Write;
        let b64 = d.call("GET", "/screenshot", None).await;
        let bytes = decode_base64(b64.as_str().unwrap());
        std::fs::File::create(&png).unwrap().write_all(&bytes).unwrap();
    }
    d.call("DELETE", "", None).await;
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for ch in clean.chunks(4) {
        let v: Vec<u32> = ch.iter().map(|&c| val(c) as u32).collect();
        let n = v.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (x << (18 - 6 * i)));
        out.push((n >> 16) as u8);
        if ch.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if ch.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

//! A minimal HTTP/1.1 keep-alive client over one connection (hyper's connection API): what the tests and
//! the load benchmark talk to a real server with.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

pub struct Client {
    send: SendRequest<Full<Bytes>>,
    host: String,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client { send, host: addr.to_string(), token: None })
    }

    /// One request; `body` is sent as JSON when given.
    pub async fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, Error> {
        self.send.ready().await?;
        let mut b = hyper::Request::builder().method(method).uri(path).header("host", &self.host);
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b.body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))?;
        let res = self.send.send_request(req).await?;
        let status = res.status().as_u16();
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = res.into_body().collect().await?.to_bytes().to_vec();
        Ok(Reply { status, content_type, body })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, Error> {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &[u8]) -> Result<Reply, Error> {
        self.request("POST", path, Some(body)).await
    }
}

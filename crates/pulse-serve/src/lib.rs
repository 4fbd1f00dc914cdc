//! pulse-serve — `pulse serve`: a read-only [`Engine`] behind an HTTP API and a web page.
//!
//! Routes (JSON unless said):
//! - `POST /v1/recommend` `{"user"?: id, "history"?: [ids], "k": 10, "exclude_history": true,
//!   "model": "pulse-ts"|"hybrid", "leave_one_out": false}`: top-k with score, reason and evidence;
//! - `GET /v1/users/{id}/recommendations?k=&model=`: the same for a user of the bundle's dataset;
//! - `GET /v1/items?q=&limit=`: title search (for building a history); `GET /v1/items/{id}`: one item,
//!   its most co-purchased neighbours and its place on the map; `GET /v1/map`: every item's 2-D position;
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` (Prometheus text), `GET /` (the page),
//!   `GET /openapi.json` (the OpenAPI document, also docs/openapi.json) and `GET /docs/` (Swagger UI, vendored).
//!
//! Limits: k ≤ 100, history ≤ 200, body ≤ `max_body_bytes`; malformed bodies → 400/413/415/422, unknown
//! ids → 422 (in a body) or 404 (in a path), always as `{"error": "…"}`. A panic in a handler becomes a
//! 500, never a dropped connection. With a token, every `/v1/*` and `/metrics` request needs
//! `Authorization: Bearer <token>`; [`check_bind`] refuses a non-loopback address without one.
pub mod client;
pub mod metrics;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics::Metrics;
use pulse_recommend::query::{clip_history, MAX_HISTORY, MAX_K};
use pulse_recommend::{Engine, Mode, RecError, Recommendation};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub const ROUTES: [&str; 12] =
    ["/", "/healthz", "/readyz", "/openapi.json", "/docs/{*rest}", "/metrics", "/v1/recommend", "/v1/users/{id}/recommendations", "/v1/items", "/v1/items/{id}", "/v1/map", "/v1/info"];

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}: refusing to serve beyond loopback without a token (pass --token or set PULSE_TOKEN)")]
    NoToken(SocketAddr),
    #[error("{0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("the token must be printable ASCII without spaces (it travels in an HTTP header)")]
    BadToken,
}

/// A non-loopback address needs a token.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ServeError::BadToken);
        }
    }
    if !addr.ip().is_loopback() && token.is_none_or(str::is_empty) {
        return Err(ServeError::NoToken(addr));
    }
    Ok(())
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub token: Option<String>,
    pub metrics: Metrics,
    pub started: Instant,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, token: Option<String>) -> Arc<AppState> {
        Arc::new(AppState { engine, token: token.filter(|t| !t.is_empty()), metrics: Metrics::new(&ROUTES), started: Instant::now() })
    }
}

/// Seconds a request may take, reading its body included.
pub const REQUEST_TIMEOUT_S: u64 = 30;
/// Seconds requests in flight get to finish after SIGTERM.
pub const SHUTDOWN_GRACE_S: u64 = 10;

/// Default body limit (bytes): a 200-item history of long ids is well under it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/v1/recommend", post(recommend))
        .route("/v1/users/{id}/recommendations", get(user_recommendations))
        .route("/v1/items", get(search_items))
        .route("/v1/items/{id}", get(item))
        .route("/v1/map", get(map))
        .route("/v1/info", get(info))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }))
        // a request (body included) that takes longer than this is answered 408 and dropped
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, std::time::Duration::from_secs(REQUEST_TIMEOUT_S)))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then gives the requests in flight [`SHUTDOWN_GRACE_S`] seconds.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::Notify::new());
    let s2 = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        s2.notify_one();
    });
    tokio::select! {
        r = server => r,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(std::time::Duration::from_secs(SHUTDOWN_GRACE_S)).await;
        } => {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE_S} s: stopping anyway");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, m: impl Into<String>) -> ApiError {
        ApiError { status, message: m.into() }
    }
    fn unprocessable(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// What was wrong, in one line.
    pub error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: &self.message })).into_response()
    }
}

impl From<RecError> for ApiError {
    fn from(e: RecError) -> ApiError {
        match e {
            RecError::Unknown(m) | RecError::Invalid(m) => ApiError::unprocessable(m),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::new(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let res = next.run(req).await;
    s.metrics.record(route.as_deref().unwrap_or("unmatched"), res.status().as_u16(), t.elapsed().as_secs_f64());
    res
}

/// Constant-time comparison (the token must not leak through timing).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(s): State<Arc<AppState>>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(t) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t);
        if !given.is_some_and(|g| same(g.trim().as_bytes(), t.as_bytes())) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        }
    }
    next.run(req).await
}

fn ten() -> usize {
    10
}
fn yes() -> bool {
    true
}

/// `POST /v1/recommend`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    /// A user of the bundle's dataset (their history, last 200 items); or give `history`.
    #[serde(default)]
    pub user: Option<String>,
    /// Catalogue item ids, oldest first (at most 200).
    #[serde(default)]
    pub history: Option<Vec<String>>,
    #[serde(default = "ten")]
    pub k: usize,
    #[serde(default = "yes")]
    pub exclude_history: bool,
    /// "pulse-ts" (default) or "hybrid".
    #[serde(default)]
    pub model: Option<String>,
    /// Attribute the sequence model itself (one forward pass per history item).
    #[serde(default)]
    pub leave_one_out: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub item: u32,
    pub id: String,
    pub title: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecommendResponse {
    pub model: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub history: Vec<HistoryItem>,
    pub items: Vec<Recommendation>,
}

fn parse_mode(m: Option<&str>) -> Result<Mode, ApiError> {
    m.map_or(Ok(Mode::PulseTs), |m| m.parse().map_err(|e: String| ApiError::unprocessable(format!("model: {e}"))))
}

fn check_k(k: usize) -> Result<(), ApiError> {
    if k == 0 || k > MAX_K {
        return Err(ApiError::unprocessable(format!("k: {k} is outside 1..={MAX_K}")));
    }
    Ok(())
}

/// Leave-one-out requests cost one forward pass per recent history item: they run on the blocking pool,
/// so they never hold up the async workers (health checks and fast requests keep being answered).
async fn answer_async(e: Arc<Engine>, history: Vec<u32>, user: Option<String>, k: usize, exclude_history: bool, mode: Mode, leave_one_out: bool) -> Result<RecommendResponse, ApiError> {
    if !leave_one_out {
        return answer(&e, history, user, k, exclude_history, mode, false);
    }
    tokio::task::spawn_blocking(move || answer(&e, history, user, k, exclude_history, mode, true))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
}

fn answer(e: &Engine, history: Vec<u32>, user: Option<String>, k: usize, exclude_history: bool, mode: Mode, leave_one_out: bool) -> Result<RecommendResponse, ApiError> {
    let req = pulse_recommend::Request { history, k, exclude_history, mode, leave_one_out };
    let items = e.recommend(&req)?;
    let history = req
        .history
        .iter()
        .map(|&i| {
            let c = &e.catalogue.items[i as usize];
            HistoryItem { item: i, id: c.id.clone(), title: c.title.clone() }
        })
        .collect();
    Ok(RecommendResponse { model: mode, user, history, items })
}

#[utoipa::path(post, path = "/v1/recommend", request_body = RecommendBody, tag = "recommend",
    responses((status = 200, description = "Top-k with score, reason and evidence", body = RecommendResponse),
        (status = 400, description = "Not JSON", body = ErrorBody), (status = 401, description = "Token missing or wrong", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody), (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Unknown item ids, k or history out of bounds, unknown field or model", body = ErrorBody)))]
async fn recommend(State(s): State<Arc<AppState>>, body: Result<Json<RecommendBody>, JsonRejection>) -> Result<Json<RecommendResponse>, ApiError> {
    let Json(b) = body?;
    check_k(b.k)?;
    let mode = parse_mode(b.model.as_deref())?;
    let e = &s.engine;
    let history = match (&b.user, &b.history) {
        (Some(_), Some(_)) => return Err(ApiError::unprocessable("give user or history, not both")),
        (None, None) => return Err(ApiError::unprocessable("give user or history")),
        (Some(u), None) => match e.user(u) {
            Some(row) => clip_history(&row.items).to_vec(),
            None => return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown user {u:?}"))),
        },
        (None, Some(h)) => {
            if h.is_empty() {
                return Err(ApiError::unprocessable("history: empty (give at least one item id)"));
            }
            if h.len() > MAX_HISTORY {
                return Err(ApiError::unprocessable(format!("history: {} items, at most {MAX_HISTORY}", h.len())));
            }
            e.items_by_id(h)?
        }
    };
    Ok(Json(answer_async(s.engine.clone(), history, b.user, b.k, b.exclude_history, mode, b.leave_one_out).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    #[serde(default = "ten")]
    pub k: usize,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub leave_one_out: bool,
}

#[utoipa::path(get, path = "/v1/users/{id}/recommendations", tag = "recommend", params(("id" = String, Path, description = "A user of the bundle's dataset"), UserQuery),
    responses((status = 200, description = "Top-k after the user's history", body = RecommendResponse),
        (status = 400, description = "Malformed query", body = ErrorBody), (status = 401, description = "Token missing or wrong", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody), (status = 422, description = "k out of bounds or unknown model", body = ErrorBody)))]
async fn user_recommendations(
    State(s): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Json<RecommendResponse>, ApiError> {
    let Path(id) = id?;
    let Query(q) = q?;
    check_k(q.k)?;
    let mode = parse_mode(q.model.as_deref())?;
    let e = &s.engine;
    let Some(row) = e.user(&id) else { return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown user {id:?}"))) };
    let history = clip_history(&row.items).to_vec();
    Ok(Json(answer_async(s.engine.clone(), history, Some(id), q.k, true, mode, q.leave_one_out).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default = "ten")]
    pub limit: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemRow {
    pub item: u32,
    pub id: String,
    pub title: String,
    pub chosen_by: u32,
}

fn item_row(e: &Engine, i: u32) -> ItemRow {
    let c = &e.catalogue.items[i as usize];
    ItemRow { item: i, id: c.id.clone(), title: c.title.clone(), chosen_by: e.pop.counts[i as usize] as u32 }
}

#[utoipa::path(get, path = "/v1/items", tag = "items", params(SearchQuery),
    responses((status = 200, description = "Items whose title contains every word of q", body = ItemsResponse),
        (status = 400, description = "Malformed query", body = ErrorBody), (status = 401, description = "Token missing or wrong", body = ErrorBody),
        (status = 422, description = "limit out of bounds or q too long", body = ErrorBody)))]
async fn search_items(State(s): State<Arc<AppState>>, q: Result<Query<SearchQuery>, QueryRejection>) -> Result<Json<ItemsResponse>, ApiError> {
    let Query(q) = q?;
    if q.limit == 0 || q.limit > 50 {
        return Err(ApiError::unprocessable(format!("limit: {} is outside 1..=50", q.limit)));
    }
    if q.q.len() > 200 {
        return Err(ApiError::unprocessable("q: longer than 200 bytes"));
    }
    let e = &s.engine;
    let items: Vec<ItemRow> = e.catalogue.search(&q.q, q.limit).into_iter().map(|i| item_row(e, i)).collect();
    Ok(Json(ItemsResponse { items }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Neighbour {
    pub id: String,
    pub title: String,
    pub co_purchases: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemDetail {
    #[serde(flatten)]
    pub row: ItemRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asin: Option<String>,
    /// Position on the 2-D map of item texts (`/v1/map`).
    pub xy: [f32; 2],
    /// The items most often bought within item-KNN's window of this one.
    pub bought_with: Vec<Neighbour>,
}

#[utoipa::path(get, path = "/v1/items/{id}", tag = "items", params(("id" = String, Path, description = "Catalogue item id")),
    responses((status = 200, description = "The item, its map position and what it is bought with", body = ItemDetail),
        (status = 401, description = "Token missing or wrong", body = ErrorBody), (status = 404, description = "Unknown item", body = ErrorBody)))]
async fn item(State(s): State<Arc<AppState>>, id: Result<Path<String>, PathRejection>) -> Result<Json<ItemDetail>, ApiError> {
    let Path(id) = id?;
    let e = &s.engine;
    let Some(i) = e.catalogue.by_id(&id) else { return Err(ApiError::new(StatusCode::NOT_FOUND, format!("unknown item {id:?}"))) };
    let (a, b) = (e.knn.offsets[i as usize] as usize, e.knn.offsets[i as usize + 1] as usize);
    let mut nb: Vec<(f32, u32)> = e.knn.counts[a..b].iter().copied().zip(e.knn.cols[a..b].iter().copied()).collect();
    nb.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let bought_with = nb
        .into_iter()
        .take(5)
        .map(|(c, j)| {
            let it = &e.catalogue.items[j as usize];
            Neighbour { id: it.id.clone(), title: it.title.clone(), co_purchases: c as u32 }
        })
        .collect();
    let asin = e.catalogue.items[i as usize].asin.clone();
    Ok(Json(ItemDetail { row: item_row(e, i), asin, xy: [e.xy[2 * i as usize], e.xy[2 * i as usize + 1]], bought_with }))
}

/// Every item's map position as two arrays (index = the `item` field of other answers), rounded to 1e-4.
#[utoipa::path(get, path = "/v1/map", tag = "items",
    responses((status = 200, description = "Every item's 2-D position (index = the item field)", body = MapResponse),
        (status = 401, description = "Token missing or wrong", body = ErrorBody)))]
async fn map(State(s): State<Arc<AppState>>) -> Json<MapResponse> {
    let e = &s.engine;
    let r = |v: f32| (v * 1e4).round() / 1e4;
    let x: Vec<f32> = e.xy.iter().step_by(2).map(|&v| r(v)).collect();
    let y: Vec<f32> = e.xy.iter().skip(1).step_by(2).map(|&v| r(v)).collect();
    Json(MapResponse { x, y })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemsResponse {
    pub items: Vec<ItemRow>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MapResponse {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
}

fn info_json(e: &Engine) -> serde_json::Value {
    let m = &e.bundle.manifest;
    serde_json::json!({
        "bundle": m.name,
        "format_version": m.format_version,
        "created_at": m.created_at,
        "code_version": m.code_version,
        "dataset": m.dataset,
        "sequence_model": e.settings.sequence_model,
        "hybrid": e.settings.hybrid_parts.iter().zip(&e.settings.hybrid_weights).map(|(p, w)| serde_json::json!({"part": p, "weight": w})).collect::<Vec<_>>(),
        "limits": { "k": MAX_K, "history": MAX_HISTORY },
    })
}

#[utoipa::path(get, path = "/v1/info", tag = "service",
    responses((status = 200, description = "The bundle: name, dataset, models, limits", body = Object),
        (status = 401, description = "Token missing or wrong", body = ErrorBody)))]
async fn info(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(info_json(&s.engine))
}

#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "Loaded and serving", body = Object)))]
async fn readyz(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    // the engine is loaded (and its files checked) before the listener opens: serving means ready
    let e = &s.engine;
    Json(serde_json::json!({ "ready": true, "bundle": e.bundle.manifest.name, "items": e.n_items(), "users": e.users.len(), "uptime_s": s.started.elapsed().as_secs() }))
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text: requests by route and status, latency histograms, RSS", body = String, content_type = "text/plain"),
        (status = 401, description = "Token missing or wrong", body = ErrorBody)))]
async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render(metrics::rss_bytes())).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "pulse", description = "Recommendations with reasons from a pulse bundle. With a token, every /v1/* and /metrics request needs `Authorization: Bearer <token>`."),
    paths(recommend, user_recommendations, search_items, item, map, info, readyz, metrics_text),
    tags((name = "recommend", description = "Top-k with the evidence behind each item"), (name = "items", description = "The catalogue"), (name = "service", description = "Health, readiness, metrics"))
)]
pub struct ApiDoc;

/// The OpenAPI document, served at /openapi.json (API version 1, whatever the crate's version).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = ApiDoc::openapi();
    doc.info.version = "1".into();
    doc.info.license = None;
    doc.info.contact = None;
    doc
}

/// The document as docs/openapi.json holds it (`pulse serve --openapi` prints it).
pub fn openapi_json() -> String {
    openapi().to_pretty_json().expect("the document serialises") + "\n"
}

/// The page: static HTML + script; every title it shows is set as text, never parsed as HTML.
pub const PAGE: &str = include_str!("page.html");

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

//! `karmada dashboard`: a web UI of the control plane. It has no identity of its own: a user
//! signs in with a bearer token the API server accepts, and every page is read from the API
//! with that token — the API server's authentication and RBAC decide what each user sees; the
//! dashboard adds no way around them. Pages are rendered on the server (`pages`, from what
//! `view` decides) and kept current by a server-sent event stream fed by watches made with the
//! same token (`/live`), which the page's script answers by fetching its content again.
//!
//! Sessions live in memory (a random id in an HttpOnly, SameSite=Strict cookie); forms carry a
//! per-session token and cross-origin posts are refused, so another site cannot act as a
//! signed-in user.

pub mod edit;
pub mod pages;
pub mod view;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use karmada_api::cluster::Cluster;
use karmada_api::policy::{
    ClusterOverridePolicy, ClusterPropagationPolicy, OverridePolicy, PropagationPolicy,
};
use karmada_api::work::{ClusterResourceBinding, ResourceBinding};
use kube::api::{Api, ListParams};
use parking_lot::Mutex;
use serde_json::Value;

use crate::pages::{Page, Viewer};

/// Where the API server is and how to trust it (never whose credentials to use).
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    /// `https://host:port` of the control plane's API server.
    pub api_server: String,
    /// The CA that signed its serving certificate (PEM).
    pub ca_pem: Vec<u8>,
}

const COOKIE: &str = "karmada_dashboard";
/// A session ends this long after sign-in.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
const MAX_SESSIONS: usize = 1000;
/// A sign-in form is a token and little else.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// A live stream ends after this (the browser reconnects), so that none is held forever.
const LIVE_FOR: Duration = Duration::from_secs(600);
/// Changes closer than this make one refresh.
const LIVE_QUIET: Duration = Duration::from_millis(300);

type Body = BoxBody<Bytes, Infallible>;

struct Session {
    user: String,
    csrf: String,
    client: kube::Client,
    created: Instant,
}

struct State {
    config: Config,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

/// A running dashboard.
pub struct Dashboard {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// Serves the dashboard on `config.bind` until stopped.
pub async fn start(config: Config) -> std::io::Result<Dashboard> {
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State { config, sessions: Mutex::new(HashMap::new()) });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(secure(handle(state, request).await)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Dashboard { addr, task })
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn redirect(to: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Headers every answer carries: only this server's scripts and styles, no framing, no
/// sniffing, no referrer to other sites (a same-origin one: with none at all browsers send
/// `Origin: null` on form posts, which the origin check must refuse), nothing cached.
fn secure(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// 32 random bytes as hex (a session id, a form token); `None` when the system has no
/// randomness to give, and then nobody signs in.
fn random_hex() -> Option<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn cookie(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl State {
    fn session(&self, request: &Request<Incoming>) -> Option<Arc<Session>> {
        let id = cookie(request)?;
        let mut sessions = self.sessions.lock();
        match sessions.get(&id) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(Arc::clone(s)),
            Some(_) => {
                sessions.remove(&id);
                None
            }
            None => None,
        }
    }

    fn insert(&self, session: Session) -> Option<String> {
        let id = random_hex()?;
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) =
                sessions.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Arc::new(session));
        Some(id)
    }
}

/// A post from another origin (a page elsewhere submitting to this one) is refused.
fn same_origin(request: &Request<Incoming>) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin with every POST; a client that does not is not a browser
        // another site controls.
        return true;
    };
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

/// A signed-in user's form post, checked: same origin, at most `limit` bytes, carrying the
/// session's form token. The session, its id and the fields; or the answer refusing it.
async fn checked_form(
    state: &State,
    request: Request<Incoming>,
    limit: usize,
) -> Result<(Arc<Session>, String, HashMap<String, String>), Response<Body>> {
    let (Some(session), Some(id)) = (state.session(&request), cookie(&request)) else {
        return Err(redirect("/login"));
    };
    if !same_origin(&request) {
        return Err(plain(StatusCode::FORBIDDEN, "cross-origin request refused"));
    }
    let Some(fields) = form(request, limit).await else {
        return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"));
    };
    if fields.get("csrf").map(String::as_str) != Some(session.csrf.as_str()) {
        return Err(plain(StatusCode::FORBIDDEN, "the form's token does not match the session"));
    }
    Ok((session, id, fields))
}

async fn form(request: Request<Incoming>, limit: usize) -> Option<HashMap<String, String>> {
    let body = Limited::new(request.into_body(), limit).collect().await.ok()?;
    Some(form_urlencoded::parse(&body.to_bytes()).into_owned().collect())
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let fragment = query.get("fragment").is_some_and(|v| v == "1");
    // Listing one namespace, for a token that may not list them all.
    let namespace = query.get("namespace").filter(|n| is_namespace_name(n)).cloned();
    // What the page's script fetches again on a change: this very URL (it adds `fragment`).
    let this_url = request.uri().path_and_query().map_or(path.clone(), |pq| pq.as_str().to_owned());
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/static/app.css") => {
            static_file(include_str!("../static/app.css"), "text/css")
        }
        (Method::GET, "/static/app.js") => {
            static_file(include_str!("../static/app.js"), "text/javascript")
        }
        (Method::GET, "/healthz") => plain(StatusCode::OK, "ok"),
        (Method::GET, "/login") => html(StatusCode::OK, pages::login(None)),
        (Method::POST, "/login") => login(&state, request).await,
        (Method::POST, "/logout") => {
            let (_, id, _) = match checked_form(&state, request, MAX_FORM_BYTES).await {
                Ok(checked) => checked,
                Err(refused) => return refused,
            };
            state.sessions.lock().remove(&id);
            let mut response = redirect("/login");
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "karmada_dashboard=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                ),
            );
            response
        }
        (Method::GET, "/live") => match state.session(&request) {
            Some(session) => live(session, namespace.as_deref()),
            None => plain(StatusCode::UNAUTHORIZED, "sign in first"),
        },
        (Method::GET, "/edit") => {
            let Some(session) = state.session(&request) else { return redirect("/login") };
            let manifest = match (query.get("kind"), query.get("name")) {
                (Some(kind), Some(name)) => {
                    load_policy(
                        &session.client,
                        kind,
                        query.get("namespace").map(String::as_str),
                        name,
                    )
                    .await
                }
                _ => String::new(),
            };
            let main = pages::editor(&manifest, &session.csrf, None);
            let viewer = Viewer { user: &session.user, csrf: &session.csrf };
            html(StatusCode::OK, pages::layout(Page::Edit, &viewer, None, &main))
        }
        (Method::POST, "/edit") => {
            let (session, _, form) =
                match checked_form(&state, request, edit::MAX_BYTES + 4096).await {
                    Ok(checked) => checked,
                    Err(refused) => return refused,
                };
            let manifest = form.get("manifest").cloned().unwrap_or_default();
            let dry_run = form.get("action").map(String::as_str) != Some("apply");
            let (applied, failure) = match edit::documents(&manifest) {
                Err(failure) => (Vec::new(), Some(failure)),
                Ok(documents) => {
                    let mut applied = Vec::new();
                    let mut failure = None;
                    for outcome in edit::apply(&session.client, &documents, dry_run).await {
                        match outcome {
                            edit::Outcome::Applied(line) => applied.push(line),
                            edit::Outcome::Failed(f) => failure = Some(f),
                        }
                    }
                    (applied, failure)
                }
            };
            let status =
                if failure.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            let result =
                pages::EditResult { dry_run, applied: &applied, failure: failure.as_ref() };
            let main = pages::editor(&manifest, &session.csrf, Some(&result));
            let viewer = Viewer { user: &session.user, csrf: &session.csrf };
            html(status, pages::layout(Page::Edit, &viewer, None, &main))
        }
        (Method::GET, p) => {
            let detail = detail_of(p);
            let page = match (&detail, Page::NAV.into_iter().find(|page| page.path() == p)) {
                (Some(Detail::Cluster(_)), _) => Page::Clusters,
                (Some(Detail::Workload { .. }), _) => Page::Workloads,
                (None, Some(page)) => page,
                (None, None) => return plain(StatusCode::NOT_FOUND, "not found"),
            };
            let Some(session) = state.session(&request) else { return redirect("/login") };
            let main = match &detail {
                Some(detail) => render_detail(detail, &session.client).await,
                None => render(page, &session.client, namespace.as_deref(), &query).await,
            };
            if fragment {
                return html(StatusCode::OK, main);
            }
            let viewer = Viewer { user: &session.user, csrf: &session.csrf };
            html(StatusCode::OK, pages::layout(page, &viewer, Some(&this_url), &main))
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

fn static_file(text: &'static str, kind: &'static str) -> Response<Body> {
    let mut response = Response::new(full(text));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    response
}

/// Why a token cannot sign in, for the sign-in page.
fn sign_in_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 401 => {
            "The API server refused this token (401 Unauthorized): it is wrong or has expired."
                .into()
        }
        kube::Error::Api(status) => {
            format!("The API server answered {}: {}", status.code, status.message)
        }
        other => format!("The API server could not be reached: {other}"),
    }
}

async fn login(state: &State, request: Request<Incoming>) -> Response<Body> {
    if !same_origin(&request) {
        return plain(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let Some(form) = form(request, MAX_FORM_BYTES).await else {
        return html(StatusCode::PAYLOAD_TOO_LARGE, pages::login(Some("The form is too large.")));
    };
    let token = form.get("token").map(|t| t.trim().to_owned()).unwrap_or_default();
    if token.is_empty() {
        return html(StatusCode::BAD_REQUEST, pages::login(Some("Enter a token.")));
    }
    let credentials = member_client::Credentials {
        ca_pem: state.config.ca_pem.clone(),
        token: Some(token),
        cert_pem: None,
        key_pem: None,
    };
    let client = match member_client::client_for(
        "dashboard",
        &state.config.api_server,
        &credentials,
        Duration::from_secs(15),
    )
    .await
    {
        Ok(client) => client,
        Err(e) => {
            let message = format!("Cannot use this API server: {e}");
            return html(StatusCode::BAD_GATEWAY, pages::login(Some(&message)));
        }
    };
    let user = match who_am_i(&client).await {
        Ok(user) => user,
        Err(e) => return html(StatusCode::UNAUTHORIZED, pages::login(Some(&sign_in_error(&e)))),
    };
    let session = random_hex().map(|csrf| Session { user, csrf, client, created: Instant::now() });
    let Some(id) = session.and_then(|session| state.insert(session)) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness for a session");
    };
    let mut response = redirect("/");
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The token's user, from a SelfSubjectReview (what `kubectl auth whoami` asks).
async fn who_am_i(client: &kube::Client) -> Result<String, kube::Error> {
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
    });
    let request = Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default())
        .map_err(kube::Error::HttpError)?;
    let review: Value = client.request(request).await?;
    Ok(review
        .pointer("/status/userInfo/username")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned())
}

/// Why a list failed, as a page section (a 403 is the common case: RBAC).
fn list_error(what: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            pages::denied(what, &format!("This token may not read them: {}", status.message))
        }
        other => pages::denied(what, &format!("Could not read them: {other}")),
    }
}

/// A DNS label, as namespace names are (anything else is ignored, not sent to the API).
fn is_namespace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A page about one object.
enum Detail {
    Cluster(String),
    /// A binding: a ResourceBinding in `namespace`, or a ClusterResourceBinding (`None`).
    Workload {
        namespace: Option<String>,
        binding: String,
    },
}

/// `/clusters/NAME`, `/workloads/NAMESPACE/BINDING` (`-` for a cluster-scoped one).
fn detail_of(path: &str) -> Option<Detail> {
    let name_ok = |n: &str| !n.is_empty() && n.len() <= 253 && !n.contains('/');
    if let Some(name) = path.strip_prefix("/clusters/") {
        return name_ok(name).then(|| Detail::Cluster(name.to_owned()));
    }
    let (ns, binding) = path.strip_prefix("/workloads/")?.split_once('/')?;
    let namespace = match ns {
        "-" => None,
        ns if is_namespace_name(ns) => Some(ns.to_owned()),
        _ => return None,
    };
    name_ok(binding).then(|| Detail::Workload { namespace, binding: binding.to_owned() })
}

async fn render_detail(detail: &Detail, client: &kube::Client) -> String {
    match detail {
        Detail::Cluster(name) => {
            let cluster = match Api::<Cluster>::all(client.clone()).get(name).await {
                Ok(cluster) => cluster,
                Err(e) => {
                    return format!(
                        "<h1>Cluster {}</h1>\n{}",
                        pages::escape(name),
                        list_error("The cluster", &e)
                    );
                }
            };
            let workloads = workloads(client, None).await.unwrap_or_default();
            pages::cluster_detail(&view::cluster_detail(&cluster, &workloads))
        }
        Detail::Workload { namespace, binding } => {
            let found = match namespace {
                Some(ns) => Api::<ResourceBinding>::namespaced(client.clone(), ns)
                    .get(binding)
                    .await
                    .map(|b| (view::workload_row(&b), b.spec, b.status)),
                None => Api::<ClusterResourceBinding>::all(client.clone())
                    .get(binding)
                    .await
                    .map(|b| (view::cluster_workload_row(&b), b.spec, b.status)),
            };
            let (row, spec, status) = match found {
                Ok(found) => found,
                Err(e) => return format!("<h1>Workload</h1>\n{}", list_error("The workload", &e)),
            };
            // Each cluster's verdict, when the token may list the clusters.
            let why = match Api::<Cluster>::all(client.clone()).list(&ListParams::default()).await {
                Ok(list) => view::why_not(&spec, status.as_ref(), &list.items),
                Err(_) => Vec::new(),
            };
            let conditions: Vec<view::ConditionView> = status
                .iter()
                .flat_map(|s| s.conditions.iter().map(view::ConditionView::from))
                .collect();
            let template = template_of(client, &row).await;
            let (op, cop) = tokio::join!(
                async {
                    match namespace {
                        Some(ns) => Api::<OverridePolicy>::namespaced(client.clone(), ns)
                            .list(&ListParams::default())
                            .await
                            .map(|l| l.items)
                            .unwrap_or_default(),
                        None => Vec::new(),
                    }
                },
                async {
                    Api::<ClusterOverridePolicy>::all(client.clone())
                        .list(&ListParams::default())
                        .await
                        .map(|l| l.items)
                        .unwrap_or_default()
                },
            );
            let overrides = view::overrides_for(&template, &op, &cop);
            let events = events(client, namespace.as_deref())
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|e| {
                    e.object.ends_with(&format!("/{}", row.name))
                        || e.object.ends_with(&format!(" {}", row.name))
                        || e.object.ends_with(&format!("/{}", row.binding))
                })
                .collect::<Vec<_>>();
            let events = view::filter_events(events, &view::EventFilter::default());
            pages::workload_detail(&row, &conditions, &why, &overrides, &events)
        }
    }
}

/// The template a workload row is about, with its labels (read with the user's token; without
/// them when it cannot be read).
async fn template_of(client: &kube::Client, row: &view::WorkloadRow) -> propagation::Template {
    use kube::core::{DynamicObject, GroupVersionKind};
    let api_version = row.api_version.clone();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    let mut template = propagation::Template {
        api_version: api_version.clone(),
        kind: row.kind.clone(),
        namespace: row.namespace.clone(),
        name: row.name.clone(),
        labels: Default::default(),
    };
    if let Ok((resource, _)) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, &row.kind))
            .await
    {
        let api: Api<DynamicObject> = if row.namespace.is_empty() {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), &row.namespace, &resource)
        };
        if let Ok(object) = api.get(&row.name).await {
            template.labels = object.metadata.labels.unwrap_or_default();
        }
    }
    template
}

/// Events the token may list (of `namespace`, or all), as rows.
async fn events(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<view::EventRow>, kube::Error> {
    use k8s_openapi::api::events::v1::Event;
    let api = match namespace {
        Some(ns) => Api::<Event>::namespaced(client.clone(), ns),
        None => Api::<Event>::all(client.clone()),
    };
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.iter().map(view::event_row).collect())
}

async fn render(
    page: Page,
    client: &kube::Client,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> String {
    let params = ListParams::default();
    match page {
        Page::Clusters => match Api::<Cluster>::all(client.clone()).list(&params).await {
            Ok(list) => {
                pages::clusters(&list.items.iter().map(view::cluster_row).collect::<Vec<_>>())
            }
            Err(e) => format!("<h1>Clusters</h1>\n{}", list_error("Clusters", &e)),
        },
        Page::Workloads => match workloads(client, namespace).await {
            Ok(rows) => pages::workloads(&rows, namespace),
            Err(e) => format!(
                "<h1>Workloads</h1>\n{}{}",
                list_error("Workloads", &e),
                pages::namespace_form(namespace)
            ),
        },
        Page::Edit => String::new(),
        Page::Events => {
            let filter = view::EventFilter {
                kind: query
                    .get("type")
                    .filter(|t| ["Normal", "Warning"].contains(&t.as_str()))
                    .cloned()
                    .unwrap_or_default(),
                text: query.get("q").map(|q| q.chars().take(200).collect()).unwrap_or_default(),
            };
            match events(client, namespace).await {
                Ok(rows) => pages::events(&view::filter_events(rows, &filter), &filter, namespace),
                Err(e) => format!(
                    "{}{}",
                    pages::events(&[], &filter, namespace),
                    list_error("Events", &e)
                ),
            }
        }
        Page::Policies => {
            let (workloads, pp, cpp, op, cop) = tokio::join!(
                workloads(client, None),
                list_values::<PropagationPolicy>(client),
                list_values::<ClusterPropagationPolicy>(client),
                list_values::<OverridePolicy>(client),
                list_values::<ClusterOverridePolicy>(client),
            );
            let workloads = workloads.unwrap_or_default();
            let mut rows = Vec::new();
            let mut denied = String::new();
            for (kind, list) in [
                ("PropagationPolicy", pp),
                ("ClusterPropagationPolicy", cpp),
                ("OverridePolicy", op),
                ("ClusterOverridePolicy", cop),
            ] {
                match list {
                    Ok(objects) => rows.extend(view::policy_rows(kind, &objects, &workloads)),
                    Err(e) => denied.push_str(&list_error(kind, &e)),
                }
            }
            pages::policies(&rows, &denied)
        }
        Page::Overview => {
            let (clusters_api, pp_api, cpp_api, op_api, cop_api) = (
                Api::<Cluster>::all(client.clone()),
                Api::<PropagationPolicy>::all(client.clone()),
                Api::<ClusterPropagationPolicy>::all(client.clone()),
                Api::<OverridePolicy>::all(client.clone()),
                Api::<ClusterOverridePolicy>::all(client.clone()),
            );
            let (clusters, workloads, pp, cpp, op, cop) = tokio::join!(
                clusters_api.list(&params),
                workloads(client, None),
                pp_api.list_metadata(&params),
                cpp_api.list_metadata(&params),
                op_api.list_metadata(&params),
                cop_api.list_metadata(&params),
            );
            let mut denied = String::new();
            let clusters: Option<Vec<_>> = match clusters {
                Ok(list) => Some(list.items.iter().map(view::cluster_row).collect()),
                Err(e) => {
                    denied.push_str(&list_error("Clusters", &e));
                    None
                }
            };
            let workloads = match workloads {
                Ok(rows) => rows,
                Err(e) => {
                    denied.push_str(&list_error("Workloads", &e));
                    Vec::new()
                }
            };
            let counts = view::counts(
                clusters.as_deref().unwrap_or_default(),
                &workloads,
                count(&pp) + count(&cpp),
                count(&op) + count(&cop),
            );
            let failing: Vec<_> = workloads.into_iter().filter(|w| w.failing()).collect();
            format!("{}{denied}", pages::overview(&counts, clusters.as_deref(), &failing))
        }
    }
}

/// Every object of a kind the token may list, as JSON.
async fn list_values<K>(client: &kube::Client) -> Result<Vec<Value>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let list = Api::<K>::all(client.clone()).list(&ListParams::default()).await?;
    Ok(list.items.iter().filter_map(|o| serde_json::to_value(o).ok()).collect())
}

/// A policy's YAML to edit (or a comment saying why it cannot be read).
async fn load_policy(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> String {
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let plural = match kind {
        "PropagationPolicy" => "propagationpolicies",
        "ClusterPropagationPolicy" => "clusterpropagationpolicies",
        "OverridePolicy" => "overridepolicies",
        "ClusterOverridePolicy" => "clusteroverridepolicies",
        _ => return String::new(),
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("policy.karmada.io", "v1alpha1", kind),
        plural,
    );
    let api: Api<DynamicObject> = match namespace.filter(|ns| is_namespace_name(ns)) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.get(name).await {
        Ok(object) => serde_json::to_value(&object).map(|v| edit::editable(&v)).unwrap_or_default(),
        Err(e) => format!("# cannot read {kind} {name}: {e}\n"),
    }
}

/// How many a list found (none when it failed: the page says why elsewhere).
fn count<K>(list: &Result<kube::core::ObjectList<K>, kube::Error>) -> usize
where
    K: Clone,
{
    list.as_ref().map_or(0, |l| l.items.len())
}

/// The ResourceBindings of `namespace` or, without one, every ResourceBinding and
/// ClusterResourceBinding the token may list, as rows.
async fn workloads(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<view::WorkloadRow>, kube::Error> {
    let params = ListParams::default();
    let api = match namespace {
        Some(ns) => Api::<ResourceBinding>::namespaced(client.clone(), ns),
        None => Api::<ResourceBinding>::all(client.clone()),
    };
    let bindings = api.list(&params).await?;
    let mut rows: Vec<_> = bindings.items.iter().map(view::workload_row).collect();
    // Cluster-scoped templates, when the token may see them.
    if namespace.is_none()
        && let Ok(list) = Api::<ClusterResourceBinding>::all(client.clone()).list(&params).await
    {
        rows.extend(list.items.iter().map(view::cluster_workload_row));
    }
    rows.sort_by(|a, b| (&a.namespace, &a.name, &a.kind).cmp(&(&b.namespace, &b.name, &b.kind)));
    Ok(rows)
}

/// Whether a watcher's event is a change (not the first list, which the page already shows,
/// and not an error).
fn changed<K>(
    event: Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>,
) -> bool {
    use kube::runtime::watcher::Event;
    matches!(event, Ok(Event::Apply(_) | Event::Delete(_)))
}

/// `text/event-stream` of `change` events whenever a Cluster or a binding the token may watch
/// changes (after the first state), quiet changes merged; ends after [`LIVE_FOR`].
fn live(session: Arc<Session>, namespace: Option<&str>) -> Response<Body> {
    use kube::runtime::{WatchStreamExt as _, watcher};
    let client = session.client.clone();
    let bindings = match namespace {
        Some(ns) => Api::<ResourceBinding>::namespaced(client.clone(), ns),
        None => Api::<ResourceBinding>::all(client.clone()),
    };
    // A watch the token may not make retries with backoff and never says "change".
    let changes = futures::stream::select_all([
        watcher(Api::<Cluster>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .map(changed)
            .boxed(),
        watcher(bindings, watcher::Config::default()).default_backoff().map(changed).boxed(),
        watcher(Api::<ClusterResourceBinding>::all(client), watcher::Config::default())
            .default_backoff()
            .map(changed)
            .boxed(),
    ]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(LIVE_FOR);
        tokio::pin!(deadline, changes);
        if tx.send(Bytes::from_static(b": connected\n\n")).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                () = &mut deadline => return,
                event = changes.next() => {
                    match event {
                        None => return,
                        Some(false) => continue,
                        Some(true) => {}
                    }
                    // Let a burst finish, then say it once.
                    let quiet = tokio::time::sleep(LIVE_QUIET);
                    tokio::pin!(quiet);
                    loop {
                        tokio::select! {
                            () = &mut quiet => break,
                            more = changes.next() => if more.is_none() { break },
                        }
                    }
                    if tx.send(Bytes::from_static(b"event: change\ndata: {}\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

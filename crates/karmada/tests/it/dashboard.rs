//! `karmada dashboard` over HTTP, as a browser talks to it: signing in with tokens of users
//! RBAC treats differently, the pages each sees, the live stream, and the forms' protections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{ApiServer, KARMADA};

struct Dashboard {
    child: Child,
    addr: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dashboard {
    fn start(api: &ApiServer) -> Dashboard {
        let mut child = Command::new(KARMADA)
            .args(["dashboard", "--bind", "127.0.0.1:0", "--kubeconfig"])
            .arg(&api.kubeconfig)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("karmada dashboard listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Dashboard { child, addr }
    }

    /// One HTTP/1.1 request (connection closed after it): status, headers (lowercased
    /// names), body.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut text =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            text.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        Reply::parse(&raw)
    }

    fn get(&self, path: &str, session: Option<&str>) -> Reply {
        let cookie = session.map(|s| format!("karmada_dashboard={s}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        self.request("GET", path, &headers, "")
    }

    /// Signs in; returns the session id.
    fn sign_in(&self, token: &str) -> String {
        let reply = self.request("POST", "/login", &[], &form(&[("token", token)]));
        assert_eq!(reply.status, 303, "{}", reply.body);
        let cookie = reply.header("set-cookie").unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        cookie.trim_start_matches("karmada_dashboard=").split(';').next().unwrap().to_owned()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &str) -> Reply {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        Reply { status, headers, body: body.to_owned() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Every one of `expected` is in `page`.
fn assert_has(page: &str, expected: &[&str]) {
    for e in expected {
        assert!(page.contains(e), "{e:?} not in {page}");
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let encode = |s: &str| -> String {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            };
            format!("{}={}", encode(k), encode(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A token of a new cluster-admin ServiceAccount.
fn admin_token(api: &ApiServer) -> String {
    api.kubectl(&["create", "serviceaccount", "admin", "-n", "default"]).ok();
    let binding =
        ["create", "clusterrolebinding", "dashboard-admin", "--clusterrole=cluster-admin"];
    api.kubectl(&[&binding[..], &["--serviceaccount=default:admin"]].concat()).ok();
    token(api, "default", "admin")
}

fn token(api: &ApiServer, namespace: &str, account: &str) -> String {
    api.kubectl(&["create", "token", account, "-n", namespace]).ok().trim().to_owned()
}

const CLUSTER: &str = "apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata:
  name: member1
spec:
  syncMode: Push
  apiEndpoint: https://127.0.0.1:1
";

const OVERRIDE: &str = "apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata:
  name: mirror
  namespace: team-a
spec:
  resourceSelectors:
  - apiVersion: apps/v1
    kind: Deployment
    name: team-a-web
  overrideRules:
  - overriders:
      imageOverrider:
      - component: Registry
        operator: replace
        value: mirror.example.com
";

const EVENT: &str = "apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: team-a-web.1
  namespace: team-a
eventTime: 2026-12-08T01:00:00.000000Z
reportingController: test
reportingInstance: test
action: Pulling
type: Warning
reason: ImagePullBackOff
note: Back-off pulling image nginx in member2
regarding:
  apiVersion: apps/v1
  kind: Deployment
  namespace: team-a
  name: team-a-web
";

fn binding(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata:
  name: {name}-deployment
  namespace: {namespace}
  annotations:
    propagationpolicy.karmada.io/name: web-policy
    propagationpolicy.karmada.io/namespace: {namespace}
spec:
  resource:
    apiVersion: apps/v1
    kind: Deployment
    namespace: {namespace}
    name: {name}
  replicas: 3
  clusters:
  - name: member1
    replicas: 2
  - name: member2
    replicas: 1
"
    )
}

/// An administrator sees the clusters (with their Ready condition and capacity) and every
/// workload with its replicas per cluster; a user whose token may read one namespace sees
/// why the rest is hidden and that namespace's workloads only; a wrong token gets the sign-in
/// page with the reason; a change arrives on the live stream; signing out needs the form's
/// token and a post from another origin is refused.
#[test]
fn each_user_sees_what_their_token_may_read_live() {
    let api = ApiServer::start("memory");
    api.kubectl_stdin(&["apply", "-f", "-"], CLUSTER).ok();
    let status = r#"{"status":{"kubernetesVersion":"v1.32.0","conditions":[{"type":"Ready","status":"True","reason":"ClusterReady","message":"cluster is healthy and ready to accept workloads","lastTransitionTime":"2026-01-01T00:00:00Z"}],"resourceSummary":{"allocatable":{"cpu":"24","memory":"96Gi"},"allocated":{"cpu":"6","memory":"24Gi"}}}}"#;
    api.kubectl(&[
        "patch",
        "cluster",
        "member1",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ])
    .ok();
    for ns in ["team-a", "team-b"] {
        api.kubectl(&["create", "namespace", ns]).ok();
        api.kubectl_stdin(&["apply", "-f", "-"], &binding(ns, &format!("{ns}-web"))).ok();
    }
    api.kubectl(&["create", "serviceaccount", "viewer", "-n", "team-a"]).ok();
    api.kubectl(&[
        "create",
        "role",
        "read-bindings",
        "-n",
        "team-a",
        "--verb=get,list,watch",
        "--resource=resourcebindings.work.karmada.io",
    ])
    .ok();
    api.kubectl(&[
        "create",
        "rolebinding",
        "viewer",
        "-n",
        "team-a",
        "--role=read-bindings",
        "--serviceaccount=team-a:viewer",
    ])
    .ok();

    let dashboard = Dashboard::start(&api);
    let anonymous = dashboard.get("/", None);
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/login")));
    let refused = dashboard.request("POST", "/login", &[], &form(&[("token", "not-a-token")]));
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("refused this token (401 Unauthorized)"), "{}", refused.body);
    assert!(refused.body.contains("<label for=\"token\">"));
    let csp = refused.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");

    // The administrator.
    let admin = dashboard.sign_in(&admin_token(&api));
    let overview = dashboard.get("/", Some(&admin));
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("Signed in as <strong>system:serviceaccount:default:admin</strong>")
    );
    assert!(overview.body.contains("data-count=\"clusters-ready\">1 / 1<"), "{}", overview.body);
    assert!(overview.body.contains("data-count=\"workloads\">2<"), "{}", overview.body);
    let clusters = dashboard.get("/clusters", Some(&admin)).body;
    assert!(clusters.contains("<tr data-cluster=\"member1\">"), "{clusters}");
    assert!(clusters.contains("Ready True"), "{clusters}");
    assert!(clusters.contains("6 / 24 cores") && clusters.contains("v1.32.0"), "{clusters}");
    let workloads = dashboard.get("/workloads", Some(&admin)).body;
    assert_has(
        &workloads,
        &[
            "data-workload=\"team-a/team-a-web\"",
            "data-workload=\"team-b/team-b-web\"",
            "aria-label=\"member1: 2 replicas\"",
            "aria-label=\"member2: 1 replicas\"",
            "team-a/web-policy",
        ],
    );

    // A cluster's page: its conditions, resources and what runs there.
    let member1 = dashboard.get("/clusters/member1", Some(&admin)).body;
    assert_has(
        &member1,
        &[
            "<h1>Cluster member1</h1>",
            "ClusterReady",
            "<th scope=\"row\">cpu</th>",
            "Deployment team-a/team-a-web <span class=\"n\">(2 replicas)</span>",
        ],
    );
    // A workload's page: where it runs, its policy, the overrides that apply, its events.
    api.kubectl_stdin(&["apply", "-f", "-"], OVERRIDE).ok();
    api.kubectl_stdin(&["create", "-f", "-"], EVENT).ok();
    let workload = dashboard.get("/workloads/team-a/team-a-web-deployment", Some(&admin)).body;
    assert_has(
        &workload,
        &[
            "<h2>Where it runs</h2>",
            "Placed by: team-a/web-policy",
            "Overrides that apply: OverridePolicy team-a/mirror",
            "data-reason=\"ImagePullBackOff\"",
        ],
    );
    assert!(
        workloads.contains("href=\"/workloads/team-a/team-a-web-deployment\""),
        "linked from the list"
    );
    let warnings = dashboard.get("/events?type=Warning&q=imagepull", Some(&admin)).body;
    assert!(warnings.contains("data-reason=\"ImagePullBackOff\""), "{warnings}");
    let normal = dashboard.get("/events?type=Normal", Some(&admin)).body;
    assert!(!normal.contains("data-reason=\"ImagePullBackOff\""), "{normal}");

    // A user who may read one namespace's bindings only.
    let viewer = dashboard.sign_in(&token(&api, "team-a", "viewer"));
    let everything = dashboard.get("/workloads", Some(&viewer)).body;
    assert!(everything.contains("This token may not read them"), "{everything}");
    assert!(!everything.contains("team-b-web") && !everything.contains("team-a-web"));
    assert!(everything.contains("<label for=\"namespace\">Namespace</label>"));
    let own = dashboard.get("/workloads?namespace=team-a", Some(&viewer)).body;
    assert!(
        own.contains("data-workload=\"team-a/team-a-web\"") && !own.contains("team-b"),
        "{own}"
    );
    let other = dashboard.get("/workloads?namespace=team-b", Some(&viewer)).body;
    assert!(other.contains("may not read them") && !other.contains("team-b-web\""), "{other}");
    let one_cluster = dashboard.get("/clusters/member1", Some(&viewer)).body;
    assert!(one_cluster.contains("may not read them") && !one_cluster.contains("ClusterReady"));
    let their_clusters = dashboard.get("/clusters", Some(&viewer)).body;
    assert!(their_clusters.contains("may not read them") && !their_clusters.contains("member1"));

    // Live: a change the administrator may see arrives as an event.
    let mut stream = TcpStream::connect(&dashboard.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "GET /live HTTP/1.1\r\nHost: {}\r\nCookie: karmada_dashboard={admin}\r\n\r\n",
        dashboard.addr
    )
    .unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(": connected") && Instant::now() < deadline {
        let n = stream.read(&mut buffer).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");
    // The watches start once the stream is open: a change made before they have listed is
    // part of their first state, not an event. So change something every 2 s until one is
    // told (bounded by the deadline).
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut changes = 0;
    let mut next_change = Instant::now();
    while !seen.contains("event: change") && Instant::now() < deadline {
        if Instant::now() >= next_change {
            changes += 1;
            api.kubectl_stdin(
                &["apply", "-f", "-"],
                &binding("team-b", &format!("later{changes}")),
            )
            .ok();
            next_change = Instant::now() + Duration::from_secs(2);
        }
        match stream.read(&mut buffer) {
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the live stream: {e}"),
        }
    }
    assert!(seen.contains("event: change"), "{seen}");
    let fragment = dashboard.get("/workloads?fragment=1", Some(&admin)).body;
    assert!(
        fragment.starts_with("<h1>Workloads</h1>") && fragment.contains("team-b/later"),
        "{fragment}"
    );

    // Signing out: the form's token is required, another origin is refused.
    let page = dashboard.get("/", Some(&admin)).body;
    let csrf =
        page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let cookie = format!("karmada_dashboard={admin}");
    let forged =
        dashboard.request("POST", "/logout", &[("Cookie", &cookie)], &form(&[("csrf", "guess")]));
    assert_eq!(forged.status, 403);
    let elsewhere = dashboard.request(
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(elsewhere.status, 403);
    assert_eq!(dashboard.get("/", Some(&admin)).status, 200, "still signed in");
    let out =
        dashboard.request("POST", "/logout", &[("Cookie", &cookie)], &form(&[("csrf", &csrf)]));
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    assert_eq!(dashboard.get("/", Some(&admin)).status, 303, "signed out");
}

const POLICY: &str = "apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: web-policy
  namespace: team-a
spec:
  resourceSelectors:
  - apiVersion: apps/v1
    kind: Deployment
    name: team-a-web
  placement:
    clusterAffinity:
      clusterNames: [member1, member2]
    replicaScheduling:
      replicaSchedulingType: Divided
";

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// The editor applies with the user's token: a dry run changes nothing, apply creates, the
/// API's 422 is shown with the field it names, a read-only user's apply is refused by RBAC;
/// the Policies page lists the policy with the workload it placed and opens it for editing.
#[test]
fn the_editor_applies_with_the_users_token_and_shows_errors_at_their_fields() {
    let api = ApiServer::start("memory");
    api.kubectl(&["create", "namespace", "team-a"]).ok();
    api.kubectl_stdin(&["apply", "-f", "-"], &binding("team-a", "team-a-web")).ok();
    api.kubectl(&["create", "serviceaccount", "viewer", "-n", "team-a"]).ok();
    api.kubectl(&[
        "create",
        "rolebinding",
        "viewer",
        "-n",
        "team-a",
        "--clusterrole=view",
        "--serviceaccount=team-a:viewer",
    ])
    .ok();
    let dashboard = Dashboard::start(&api);
    let admin = dashboard.sign_in(&admin_token(&api));
    let cookie = format!("karmada_dashboard={admin}");
    let csrf = csrf_of(&dashboard.get("/edit", Some(&admin)).body);
    let submit = |cookie: &str, csrf: &str, manifest: &str, action: &str| {
        dashboard.request(
            "POST",
            "/edit",
            &[("Cookie", cookie)],
            &form(&[("csrf", csrf), ("manifest", manifest), ("action", action)]),
        )
    };

    let dry = submit(&cookie, &csrf, POLICY, "dry-run");
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert!(
        dry.body.contains("propagationpolicy.policy.karmada.io/web-policy applied (dry run)"),
        "{}",
        dry.body
    );
    api.kubectl(&["-n", "team-a", "get", "propagationpolicy", "web-policy"]).fails();
    let applied = submit(&cookie, &csrf, POLICY, "apply");
    assert!(applied.body.contains("web-policy applied<"), "{}", applied.body);
    api.kubectl(&["-n", "team-a", "get", "propagationpolicy", "web-policy"]).ok();

    let invalid = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: team-a
spec:
  replicas: -1
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
      - name: c
        image: nginx
";
    let refused = submit(&cookie, &csrf, invalid, "dry-run");
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);
    assert!(
        refused.body.contains("<li data-field=\"spec.replicas\"><code>spec.replicas</code>"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("aria-invalid=\"true\""));
    assert!(refused.body.contains("replicas: -1"), "the text stays to be fixed");
    let wrong_token = submit(&cookie, "not-the-token", POLICY, "apply");
    assert_eq!(wrong_token.status, 403);

    // A user who may only read is refused by the API server, not by the dashboard.
    let viewer = dashboard.sign_in(&token(&api, "team-a", "viewer"));
    let viewer_cookie = format!("karmada_dashboard={viewer}");
    let viewer_csrf = csrf_of(&dashboard.get("/edit", Some(&viewer)).body);
    let forbidden =
        submit(&viewer_cookie, &viewer_csrf, &POLICY.replace("web-policy", "other"), "apply");
    assert_eq!(forbidden.status, 422);
    assert!(forbidden.body.contains("Forbidden (403)"), "{}", forbidden.body);

    let policies = dashboard.get("/policies", Some(&admin)).body;
    assert!(policies.contains("data-policy=\"PropagationPolicy/team-a/web-policy\""), "{policies}");
    assert!(policies.contains("apps/v1 Deployment team-a/team-a-web"), "{policies}");
    assert!(policies.contains("member1, member2; replicas Divided"), "{policies}");
    assert!(
        policies.contains("Deployment team-a/team-a-web"),
        "the workload it placed: {policies}"
    );
    let edit = dashboard
        .get("/edit?kind=PropagationPolicy&namespace=team-a&name=web-policy", Some(&admin))
        .body;
    assert!(edit.contains("name: web-policy") && !edit.contains("resourceVersion"), "{edit}");
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
";

/// In headless Chromium: sign in (a wrong token first), see three clusters Ready, deploy a
/// Deployment and its PropagationPolicy through the editor (dry run, then apply; a
/// validation error shown at its field), watch its replicas appear per cluster, then — with
/// the page left open — a member made unreachable and the replicas moving away. The pages
/// update themselves (server-sent events); screenshots are saved under the test's scratch
/// directory (`target/tmp/screenshots`).
#[test]
fn in_chromium_an_admin_deploys_through_the_editor_and_watches_a_failover() {
    deploy_and_fail_over_in(crate::browser::Engine::Chromium, "");
}

/// The same in Firefox (screenshots prefixed `firefox-`).
#[test]
fn in_firefox_an_admin_deploys_through_the_editor_and_watches_a_failover() {
    deploy_and_fail_over_in(crate::browser::Engine::Firefox, "firefox-");
}

fn deploy_and_fail_over_in(engine: crate::browser::Engine, shots: &str) {
    let cp = crate::plane::ControlPlane::with_joined(3);
    cp.api.kubectl_stdin(&["apply", "-f", "-"], crate::propagation::NOT_READY_POLICY).ok();
    let admin_token = admin_token(&cp.api);
    let dashboard = Dashboard::start(&cp.api);
    let base = format!("http://{}", dashboard.addr);
    let browser = crate::browser::Browser::start(engine);
    let long = Duration::from_secs(60);

    browser.goto(&format!("{base}/"));
    browser.wait_until(long, "sent to sign in", |b| b.url().ends_with("/login"));
    browser.type_into("#token", "not-a-token");
    browser.click("form button[type=submit]");
    browser.wait_until(long, "a wrong token refused", |b| b.text().contains("refused this token"));
    browser.screenshot(&format!("{shots}login"));
    browser.type_into("#token", &admin_token);
    browser.click("form button[type=submit]");
    browser.wait_until(long, "signed in", |b| b.url() == format!("{base}/"));
    assert!(browser.text().contains("Signed in as system:serviceaccount:default:admin"));

    browser.goto(&format!("{base}/clusters"));
    browser
        .wait_until(long, "three clusters Ready", |b| b.text().matches("Ready True").count() == 3);
    browser.screenshot(&format!("{shots}clusters"));

    browser.goto(&format!("{base}/edit"));
    browser.fill("#manifest", &DEPLOYMENT.replace("replicas: 2", "replicas: -1"));
    browser.click("button[value=dry-run]");
    browser.wait_until(long, "the validation error at its field", |b| {
        b.source().contains("data-field=\"spec.replicas\"")
    });
    assert!(
        browser
            .text()
            .contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{}",
        browser.text()
    );
    browser.screenshot(&format!("{shots}validation"));
    let policy =
        crate::propagation::FAILOVER_POLICY.replace("nginx-propagation", "web-propagation");
    browser.fill("#manifest", &format!("{DEPLOYMENT}---\n{policy}"));
    browser.click("button[value=dry-run]");
    browser
        .wait_until(long, "a dry run", |b| b.text().contains("web-propagation applied (dry run)"));
    cp.api.kubectl(&["get", "deployment", "nginx"]).fails();
    browser.click("button[value=apply]");
    browser.wait_until(long, "applied", |b| {
        b.text().contains("propagationpolicy.policy.karmada.io/web-propagation applied")
    });

    browser.goto(&format!("{base}/workloads"));
    let placed = |b: &crate::browser::Browser, cluster: &str, replicas: u32| {
        b.source().contains(&format!("aria-label=\"{cluster}: {replicas} replicas\""))
    };
    browser.wait_until(long, "a replica in each of member1 and member2", |b| {
        placed(b, "member1", 1) && placed(b, "member2", 1) && b.text().contains("2 / 2")
    });
    browser.screenshot(&format!("{shots}workloads"));
    browser.goto(&format!("{base}/"));
    browser.wait_until(long, "the overview", |b| b.text().contains("Clusters ready"));
    browser.screenshot(&format!("{shots}overview"));

    // The page stays open: what follows reaches it through the live stream.
    browser.goto(&format!("{base}/workloads"));
    browser.wait_until(long, "the workloads page", |b| placed(b, "member1", 1));
    cp.fault("member1", &["--unreachable", "true"]);
    browser.wait_until(Duration::from_secs(90), "both replicas moved to member2", |b| {
        placed(b, "member2", 2) && !b.source().contains("aria-label=\"member1:")
    });
    assert!(
        browser.source().contains("data-refreshed="),
        "the page refreshed itself, not reloaded"
    );
    browser.screenshot(&format!("{shots}failover"));

    // The workload's page, by its link: every cluster's verdict from the scheduler's filters.
    browser.click("tr[data-workload='default/nginx'] th a");
    browser.wait_until(long, "the workload's page", |b| b.text().contains("Every cluster"));
    let text = browser.text();
    assert!(text.contains("member2 chosen: 2 replicas"), "{text}");
    assert!(text.contains("member3 filtered out:") && text.contains("(ClusterAffinity)"), "{text}");
    assert!(text.contains("Placed by: default/web-propagation"), "{text}");
    browser.screenshot(&format!("{shots}workload"));
}

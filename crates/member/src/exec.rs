//! `pods/<name>/exec` and `pods/<name>/attach` for simulated members, over WebSocket as
//! kubectl (1.30+) and client-go speak them (`v5.channel.k8s.io`, `v4.channel.k8s.io`: binary
//! messages whose first byte is the stream, 0 stdin, 1 stdout, 2 stderr, 3 the closing
//! status; v5 adds 255, "this stream ended").
//!
//! A container runs a small set of commands over a view of itself built from the pod and
//! the objects it mounts: `echo`, `env`/`printenv`, `hostname`, `cat`/`ls` of its mounted
//! ConfigMap and Secret keys and a few `/etc` files, `pwd`, `whoami`, `id`, `uname`, `date`,
//! `true`/`false`/`exit N`, `sleep N` (at most a minute), `cat` without files echoing stdin
//! (`kubectl exec -i`), and `sh -c` over those (`;`, `&&`, `||`, quotes). Anything else
//! fails as a missing executable does. `attach` streams the container's log lines as they are
//! written. SPDY (kubectl's fallback, and older kubectl's only protocol) is refused with a
//! clear message.

use std::collections::BTreeMap;
use std::time::Duration;

use apimachinery::ApiError;
use apiserver::api::{Body, SubresourceRequest, Upgrade};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The subprotocols served, preferred first.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// How long a process takes to start in the container. (Clients set up their streams after
/// the connection is upgraded: output written at once, before a real process could have
/// written any, may reach a stream the client has not opened yet, which it drops.)
const PROCESS_START: Duration = Duration::from_millis(100);

/// The longest `sleep` runs.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What a command did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

impl Output {
    fn out(text: impl Into<String>) -> Output {
        Output { stdout: text.into().into_bytes(), ..Output::default() }
    }

    fn fail(code: i32, text: impl Into<String>) -> Output {
        Output { stderr: text.into().into_bytes(), code, ..Output::default() }
    }
}

/// What an exec does.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    /// Writes its output and exits.
    Done(Output),
    /// Copies stdin to stdout until stdin ends.
    Cat,
    /// Waits, then exits 0.
    Sleep(Duration),
}

/// A container as its commands see it.
#[derive(Clone, Debug, Default)]
pub struct Container {
    pub hostname: String,
    pub env: BTreeMap<String, String>,
    /// Absolute paths to contents (mounted keys, `/etc` files).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Container {
    fn dir_entries(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .collect();
        names.dedup();
        (!names.is_empty() || dir == "/").then_some(names)
    }

    /// Runs one command line (`argv`).
    pub fn run(&self, argv: &[String], stdin: bool) -> Program {
        let Some((command, args)) = argv.split_first() else {
            return Program::Done(Output::fail(126, "no command given\n"));
        };
        let name = command.rsplit('/').next().unwrap_or(command);
        Program::Done(match name {
            "sh" | "bash" | "ash" => match args {
                [flag, script, ..] if flag == "-c" => return self.script(script, stdin),
                _ => Output::fail(2, format!("{name}: only `{name} -c COMMANDS` can run here\n")),
            },
            "cat" if args.is_empty() && stdin => return Program::Cat,
            "cat" if args.is_empty() => Output::default(),
            "sleep" => {
                let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(-1.0);
                if seconds < 0.0 {
                    Output::fail(1, "sleep: invalid number\n")
                } else {
                    return Program::Sleep(Duration::from_secs_f64(seconds).min(MAX_SLEEP));
                }
            }
            _ => self.simple(name, args),
        })
    }

    fn simple(&self, name: &str, args: &[String]) -> Output {
        match name {
            "echo" => {
                let (newline, words) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                Output::out(format!("{}{}", words.join(" "), if newline { "\n" } else { "" }))
            }
            "env" | "printenv" if args.is_empty() => {
                Output::out(self.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
            }
            "printenv" => {
                let found: Vec<&String> = args.iter().filter_map(|a| self.env.get(a)).collect();
                let text: String = found.iter().map(|v| format!("{v}\n")).collect();
                Output {
                    stdout: text.into_bytes(),
                    code: i32::from(found.len() < args.len()),
                    ..Output::default()
                }
            }
            "hostname" => Output::out(format!("{}\n", self.hostname)),
            "pwd" => Output::out("/\n"),
            "whoami" => Output::out("root\n"),
            "id" => Output::out("uid=0(root) gid=0(root) groups=0(root)\n"),
            "uname" if args.iter().any(|a| a == "-a") => Output::out(format!(
                "Linux {} 6.1.0-karmada-rs #1 SMP x86_64 GNU/Linux\n",
                self.hostname
            )),
            "uname" => Output::out("Linux\n"),
            "date" => Output::out(format!("{}\n", apiserver::api::now_rfc3339())),
            "true" => Output::default(),
            "false" => Output { code: 1, ..Output::default() },
            "exit" => Output {
                code: args.first().and_then(|a| a.parse().ok()).unwrap_or(0),
                ..Output::default()
            },
            "cat" => {
                let mut out = Output::default();
                for path in args {
                    match self.files.get(path) {
                        Some(content) => out.stdout.extend_from_slice(content),
                        None if self.dir_entries(path).is_some() => {
                            out.stderr.extend(b"cat: read error: Is a directory\n");
                            out.code = 1;
                        }
                        None => {
                            out.stderr.extend(
                                format!("cat: can't open '{path}': No such file or directory\n")
                                    .bytes(),
                            );
                            out.code = 1;
                        }
                    }
                }
                out
            }
            "ls" => {
                let mut out = Output::default();
                let dirs: Vec<&str> = if args.is_empty() {
                    vec!["/"]
                } else {
                    args.iter().map(String::as_str).collect()
                };
                for dir in dirs {
                    if self.files.contains_key(dir) {
                        out.stdout.extend(format!("{dir}\n").bytes());
                    } else if let Some(entries) = self.dir_entries(dir) {
                        for entry in entries {
                            out.stdout.extend(format!("{entry}\n").bytes());
                        }
                    } else {
                        out.stderr
                            .extend(format!("ls: {dir}: No such file or directory\n").bytes());
                        out.code = 1;
                    }
                }
                out
            }
            other => Output::fail(
                127,
                format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{other}\": executable file not found in $PATH: unknown\n"
                ),
            ),
        }
    }

    /// `sh -c SCRIPT`: commands separated by `;`, `&&` and `||`, with `$VAR` expanded.
    fn script(&self, script: &str, stdin: bool) -> Program {
        let mut total = Output::default();
        let mut skip = false;
        let commands = split_script(script);
        if let [(words, _)] = commands.as_slice() {
            let argv: Vec<String> = words.iter().map(|w| self.expand(w)).collect();
            return self.run(&argv, stdin);
        }
        for (words, then) in commands {
            if !skip {
                let argv: Vec<String> = words.iter().map(|w| self.expand(w)).collect();
                let out = match self.run(&argv, false) {
                    Program::Done(out) => out,
                    // Nothing to read from, or a pause inside a script: done at once.
                    Program::Cat | Program::Sleep(_) => Output::default(),
                };
                total.stdout.extend(out.stdout);
                total.stderr.extend(out.stderr);
                total.code = out.code;
            }
            skip = match then {
                Then::And => total.code != 0,
                Then::Or => total.code == 0,
                Then::Next => false,
            };
        }
        Program::Done(total)
    }

    fn expand(&self, word: &str) -> String {
        let mut out = String::new();
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            if c == LITERAL_DOLLAR {
                out.push('$');
                continue;
            }
            if c != '$' {
                out.push(c);
                continue;
            }
            let braced = chars.peek() == Some(&'{');
            if braced {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if braced && chars.peek() == Some(&'}') {
                chars.next();
            }
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(self.env.get(&name).map_or("", String::as_str));
            }
        }
        out
    }
}

/// A `$` inside single quotes, until expansion.
const LITERAL_DOLLAR: char = '\u{1}';

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    Next,
    And,
    Or,
}

/// A script as commands (shell words, quotes removed) and what joins each to the next.
fn split_script(script: &str) -> Vec<(Vec<String>, Then)> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let mut end = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool, then: Then| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
        if !words.is_empty() {
            commands.push((std::mem::take(words), then));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    // A quoted `$` stays literal (marked so that expansion leaves it).
                    word.push(if q == '$' { LITERAL_DOLLAR } else { q });
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                word.push(e);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            ';' | '\n' => end(&mut words, &mut word, &mut in_word, Then::Next),
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                end(&mut words, &mut word, &mut in_word, Then::And);
            }
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                end(&mut words, &mut word, &mut in_word, Then::Or);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end(&mut words, &mut word, &mut in_word, Then::Next);
    commands
}

/// A data field of a ConfigMap (`data` as text, `binaryData` base64) or Secret (base64).
fn data_of(object: &Value) -> BTreeMap<String, Vec<u8>> {
    let b64 = |v: &Value| {
        v.as_str().and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
    };
    let mut data = BTreeMap::new();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    for (field, encoded) in [("data", kind == "Secret"), ("binaryData", true)] {
        for (key, value) in object.get(field).and_then(Value::as_object).into_iter().flatten() {
            let bytes =
                if encoded { b64(value) } else { value.as_str().map(|s| s.as_bytes().to_vec()) };
            if let Some(bytes) = bytes {
                data.insert(key.clone(), bytes);
            }
        }
    }
    data
}

/// The container's view of itself, with what it mounts and references read from the member.
pub async fn container_view(
    storage: &apiserver::storage::Storage,
    pod: &Value,
    container: &str,
) -> Container {
    let namespace = apimachinery::object::namespace(pod).to_owned();
    let name = apimachinery::object::name(pod).to_owned();
    let hostname =
        pod.pointer("/spec/hostname").and_then(Value::as_str).unwrap_or(&name).to_owned();
    let spec = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(pod.pointer("/spec/initContainers").and_then(Value::as_array).into_iter().flatten())
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .cloned()
        .unwrap_or(json!({}));
    type Data = BTreeMap<String, Vec<u8>>;
    let mut objects: BTreeMap<(&'static str, String), Option<Data>> = BTreeMap::new();
    let mut read = async |kind: &'static str, object: &str| -> Option<BTreeMap<String, Vec<u8>>> {
        let key = (kind, object.to_owned());
        if let Some(found) = objects.get(&key) {
            return found.clone();
        }
        let plural = if kind == "Secret" { "secrets" } else { "configmaps" };
        let found = match storage.registry().storage_def("", plural) {
            Some(def) => {
                storage.read(&def, Some(&namespace), object).await.ok().map(|o| data_of(&o))
            }
            None => None,
        };
        objects.insert(key, found.clone());
        found
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut env = BTreeMap::from([
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("HOSTNAME".to_owned(), hostname.clone()),
        ("HOME".to_owned(), "/root".to_owned()),
        ("KUBERNETES_SERVICE_HOST".to_owned(), "10.96.0.1".to_owned()),
        ("KUBERNETES_SERVICE_PORT".to_owned(), "443".to_owned()),
    ]);
    for from in spec.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
        let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or_default();
        for (kind, field) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
            if let Some(source) = from.pointer(&format!("/{field}/name")).and_then(Value::as_str)
                && let Some(data) = read(kind, source).await
            {
                for (k, v) in data {
                    env.insert(format!("{prefix}{k}"), text(&v));
                }
            }
        }
    }
    for var in spec.get("env").and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = var.get("name").and_then(Value::as_str) else { continue };
        let value = if let Some(v) = var.get("value").and_then(Value::as_str) {
            Some(v.to_owned())
        } else if let Some(field) =
            var.pointer("/valueFrom/fieldRef/fieldPath").and_then(Value::as_str)
        {
            let path = format!("/{}", field.replace('.', "/"));
            pod.pointer(&path).and_then(Value::as_str).map(str::to_owned)
        } else {
            let mut found = None;
            for (kind, field) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")] {
                if let (Some(source), Some(k)) = (
                    var.pointer(&format!("/valueFrom/{field}/name")).and_then(Value::as_str),
                    var.pointer(&format!("/valueFrom/{field}/key")).and_then(Value::as_str),
                ) && let Some(data) = read(kind, source).await
                {
                    found = data.get(k).map(|v| text(v));
                }
            }
            found
        };
        if let Some(value) = value {
            env.insert(key.to_owned(), value);
        }
    }
    let ip = pod.pointer("/status/podIP").and_then(Value::as_str).unwrap_or("127.0.0.1");
    let mut files = BTreeMap::from([
        ("/etc/hostname".to_owned(), format!("{hostname}\n").into_bytes()),
        ("/etc/hosts".to_owned(), format!("127.0.0.1\tlocalhost\n{ip}\t{hostname}\n").into_bytes()),
        (
            "/etc/resolv.conf".to_owned(),
            format!("search {namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n").into_bytes(),
        ),
    ]);
    let volumes =
        pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    for mount in spec.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let (Some(volume), Some(path)) = (
            mount.get("name").and_then(Value::as_str),
            mount.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(volume) =
            volumes.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(volume))
        else {
            continue;
        };
        let source = [("ConfigMap", "/configMap/name"), ("Secret", "/secret/secretName")]
            .into_iter()
            .find_map(|(kind, p)| volume.pointer(p).and_then(Value::as_str).map(|n| (kind, n)));
        let Some((kind, source)) = source else { continue };
        let Some(data) = read(kind, source).await else { continue };
        let items = volume
            .pointer(if kind == "Secret" { "/secret/items" } else { "/configMap/items" })
            .and_then(Value::as_array);
        let sub_path = mount.get("subPath").and_then(Value::as_str);
        let base = path.trim_end_matches('/');
        let placed: Vec<(String, Vec<u8>)> = match items {
            Some(items) => items
                .iter()
                .filter_map(|i| {
                    let key = i.get("key")?.as_str()?;
                    let to = i.get("path").and_then(Value::as_str).unwrap_or(key);
                    Some((to.to_owned(), data.get(key)?.clone()))
                })
                .collect(),
            None => data.into_iter().collect(),
        };
        for (relative, content) in placed {
            match sub_path {
                Some(sub) if sub == relative => {
                    files.insert(base.to_owned(), content);
                }
                Some(_) => {}
                None => {
                    files.insert(format!("{base}/{relative}"), content);
                }
            }
        }
    }
    Container { hostname, env, files }
}

/// Every value of a repeated query parameter (`command=echo&command=hi`), decoded.
fn all_values(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| apiserver::request::percent_decode(k) == key)
        .map(|(_, v)| apiserver::request::percent_decode(v))
        .collect()
}

/// The closing status a session sends on stream 3.
pub fn status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({"metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
}

/// The subprotocol to speak with a client that offers `offered` (a header's values).
pub fn negotiate<'a>(offered: impl Iterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<String> =
        offered.flat_map(|v| v.split(',')).map(|p| p.trim().to_owned()).collect();
    PROTOCOLS.iter().copied().find(|p| offered.iter().any(|o| o == p))
}

/// What a session runs once the connection is upgraded.
enum Session {
    Exec { program: Program, tty: bool },
    Attach { pod: Value, container: String, namespace: String, name: String, started: i64 },
}

/// Serves `pods/<name>/exec` (`attach: false`) and `pods/<name>/attach`.
pub struct PodStream {
    pub attach: bool,
}

#[async_trait::async_trait]
impl apiserver::Subresource for PodStream {
    fn methods(&self) -> &'static [http::Method] {
        &[http::Method::GET, http::Method::POST]
    }

    async fn serve(
        &self,
        request: SubresourceRequest<'_>,
    ) -> Result<http::Response<Body>, ApiError> {
        let namespace = request.target.namespace.clone().unwrap_or_default();
        let name = request.target.name.clone().unwrap_or_default();
        let pod = crate::logs::read_pod(request.storage, &namespace, &name).await?;
        let query = request.query;
        let container = crate::logs::container(&pod, query.get("container"))?;
        let (started, ended) = crate::logs::run_span(&pod, &container)?;
        if ended.is_some()
            || pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running")
        {
            return Err(ApiError::bad_request(format!(
                "cannot {} a container in a completed pod; current phase is {}",
                if self.attach { "attach" } else { "exec into" },
                pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Unknown")
            )));
        }
        let headers = &request.parts.headers;
        let upgrade =
            headers.get(http::header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if upgrade.to_ascii_lowercase().starts_with("spdy") {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade connection: this member streams over WebSocket ({}), not SPDY",
                PROTOCOLS.join(", ")
            )));
        }
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(ApiError::bad_request("Upgrade request required"));
        }
        let protocol = negotiate(
            headers.get_all("sec-websocket-protocol").iter().filter_map(|v| v.to_str().ok()),
        )
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: none of the offered subprotocols is served (served: {})",
                PROTOCOLS.join(", ")
            ))
        })?;
        let key = headers.get("sec-websocket-key").ok_or_else(|| {
            ApiError::bad_request("unable to upgrade connection: no Sec-WebSocket-Key")
        })?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let session = if self.attach {
            Session::Attach { pod, container, namespace, name, started }
        } else {
            let command = all_values(request.parts.uri.query(), "command");
            if command.is_empty() {
                return Err(ApiError::bad_request("you must specify at least 1 command"));
            }
            let view = container_view(request.storage, &pod, &container).await;
            let program = view.run(&command, query.flag("stdin"));
            Session::Exec { program, tty: query.flag("tty") }
        };
        let upgrade = Upgrade::take(request.parts)
            .ok_or_else(|| ApiError::bad_request("unable to upgrade connection: not upgradable"))?;
        let storage = std::sync::Arc::clone(request.storage);
        let v5 = protocol.starts_with("v5");
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let io = hyper_util::rt::TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            tokio::time::sleep(PROCESS_START).await;
            run_session(ws, session, v5, storage).await;
        });
        http::Response::builder()
            .status(101)
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::CONNECTION, "Upgrade")
            .header("sec-websocket-accept", accept)
            .header("sec-websocket-protocol", protocol)
            .body(apiserver::api::full(Bytes::new()))
            .map_err(|e| ApiError::internal(e.to_string()))
    }
}

fn frame(stream: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(stream);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

/// With a terminal, output has CR LF line ends and stderr goes to stdout.
fn terminal(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

async fn run_session<S>(
    mut ws: WebSocketStream<S>,
    session: Session,
    v5: bool,
    storage: std::sync::Arc<apiserver::storage::Storage>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let code = match session {
        Session::Exec { program: Program::Done(out), tty } => {
            let (stdout, stderr) = if tty {
                let mut both = out.stdout.clone();
                both.extend_from_slice(&out.stderr);
                (terminal(&both), Vec::new())
            } else {
                (out.stdout, out.stderr)
            };
            if !stdout.is_empty() && ws.send(frame(STDOUT, &stdout)).await.is_err() {
                return;
            }
            if !stderr.is_empty() && ws.send(frame(STDERR, &stderr)).await.is_err() {
                return;
            }
            out.code
        }
        Session::Exec { program: Program::Sleep(duration), .. } => {
            let deadline = tokio::time::sleep(duration);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    message = ws.next() => match message {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        _ => {}
                    },
                }
            }
            0
        }
        Session::Exec { program: Program::Cat, tty } => {
            // Echo stdin until it ends: v5's end-of-stream signal, or the connection closing.
            while let Some(message) = ws.next().await {
                let data = match message {
                    Ok(Message::Binary(data)) => data,
                    Ok(Message::Close(_)) | Err(_) => return,
                    Ok(_) => continue,
                };
                match data.first() {
                    Some(&STDIN) => {
                        let chunk = if tty { terminal(&data[1..]) } else { data[1..].to_vec() };
                        if ws.send(frame(STDOUT, &chunk)).await.is_err() {
                            return;
                        }
                    }
                    Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => break,
                    _ => {}
                }
            }
            0
        }
        Session::Attach { pod, container, namespace, name, started } => {
            // The main process's output from now on, as the container writes it.
            let mut next = (apiserver::api::now_seconds() - started) / crate::logs::HEARTBEAT + 1;
            loop {
                let due = started + next * crate::logs::HEARTBEAT;
                let wait = (due - apiserver::api::now_seconds()).max(0) as u64;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    message = ws.next() => match message {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        _ => continue,
                    },
                }
                let still =
                    crate::logs::read_pod(&storage, &namespace, &name).await.ok().filter(|p| {
                        crate::logs::run_span(p, &container)
                            .is_ok_and(|(s, e)| s == started && e.is_none())
                    });
                if still.is_none() {
                    break;
                }
                let lines = crate::logs::lines(&pod, &container, started, None, due);
                if let Some(line) = lines.last()
                    && ws.send(frame(STDOUT, format!("{}\n", line.text).as_bytes())).await.is_err()
                {
                    return;
                }
                next += 1;
            }
            0
        }
    };
    let _ = ws.send(frame(ERROR, status(code).to_string().as_bytes())).await;
    // A normal closure: clients take any other as a broken stream.
    let normal = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: Default::default(),
    };
    let _ = ws.close(Some(normal)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        Container {
            hostname: "web-1".into(),
            env: [
                ("GREETING".to_owned(), "hello".to_owned()),
                ("PATH".to_owned(), "/bin".to_owned()),
            ]
            .into(),
            files: [
                ("/etc/config/app.conf".to_owned(), b"mode=fast\n".to_vec()),
                ("/etc/config/level".to_owned(), b"3".to_vec()),
            ]
            .into(),
        }
    }

    fn run(argv: &[&str]) -> Output {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        match container().run(&argv, false) {
            Program::Done(out) => out,
            other => panic!("{other:?}"),
        }
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn commands_see_the_container() {
        assert_eq!(text(&run(&["echo", "hi", "there"]).stdout), "hi there\n");
        assert_eq!(text(&run(&["hostname"]).stdout), "web-1\n");
        assert_eq!(text(&run(&["printenv", "GREETING"]).stdout), "hello\n");
        assert_eq!(text(&run(&["env"]).stdout), "GREETING=hello\nPATH=/bin\n");
        assert_eq!(text(&run(&["cat", "/etc/config/app.conf"]).stdout), "mode=fast\n");
        assert_eq!(text(&run(&["ls", "/etc/config"]).stdout), "app.conf\nlevel\n");
        let missing = run(&["cat", "/nope"]);
        assert_eq!(
            (missing.code, text(&missing.stderr)),
            (1, "cat: can't open '/nope': No such file or directory\n")
        );
        let unknown = run(&["nginx", "-s", "reload"]);
        assert_eq!(unknown.code, 127);
        assert!(
            text(&unknown.stderr).contains(r#"exec: "nginx": executable file not found in $PATH"#)
        );
        assert_eq!(run(&["/bin/false"]).code, 1);
    }

    #[test]
    fn sh_runs_scripts() {
        let out = run(&[
            "sh",
            "-c",
            "echo $GREETING ${GREETING}!; false && echo no || echo 'yes $GREETING'",
        ]);
        assert_eq!(text(&out.stdout), "hello hello!\nyes $GREETING\n");
        assert_eq!(run(&["sh", "-c", "exit 3"]).code, 3);
        assert_eq!(
            container().run(&["sh".into(), "-c".into(), "cat".into()], true),
            Program::Cat,
            "a lone cat reads stdin"
        );
        assert_eq!(
            container().run(&["sleep".into(), "600".into()], false),
            Program::Sleep(MAX_SLEEP)
        );
    }

    #[test]
    fn statuses_and_protocols_are_kubelets() {
        assert_eq!(status(0)["status"], "Success");
        let failed = status(2);
        assert_eq!(
            (failed["reason"].as_str(), failed["details"]["causes"][0]["message"].as_str()),
            (Some("NonZeroExitCode"), Some("2"))
        );
        assert_eq!(
            negotiate(["v4.channel.k8s.io, v5.channel.k8s.io"].into_iter()),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            negotiate(["channel.k8s.io", "v4.channel.k8s.io"].into_iter()),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate(["base64.channel.k8s.io"].into_iter()), None);
        assert_eq!(
            all_values(Some("command=echo&stdout=true&command=a%20b"), "command"),
            ["echo", "a b"]
        );
    }
}

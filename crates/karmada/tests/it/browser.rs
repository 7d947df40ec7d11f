//! Real browsers for tests: headless Chromium and Firefox driven through their W3C WebDriver
//! servers (chromedriver, geckodriver; JSON over HTTP on loopback). Debian's `chromium`,
//! `chromium-driver` and `firefox-esr`, and geckodriver from crates.io: `scripts/test` installs
//! them when missing, and a test says so loudly when they are absent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Which browser.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Chromium,
    Firefox,
}

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 exchange with chromedriver; returns the decoded JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )?;
    // chromedriver keeps the connection open: read the head, then what Content-Length says
    // (or chunks until the last one).
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let split = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(std::io::Error::other("chromedriver closed the connection"));
        }
        raw.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let complete = |raw: &[u8]| -> bool {
        let body = &raw[split + 4..];
        match length {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        }
    };
    while !complete(&raw) {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buffer[..n]);
    }
    let mut body = raw[split + 4..].to_vec();
    if let Some(n) = length {
        body.truncate(n);
    }
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
                .unwrap_or(0);
            if size == 0 || rest.len() < end + 2 + size {
                break;
            }
            decoded.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = rest.get(end + 2 + size + 2..).unwrap_or_default();
        }
        body = decoded;
    }
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

impl Browser {
    /// Starts the engine's WebDriver server and a headless session.
    pub fn start(engine: Engine) -> Browser {
        let (driver, capabilities) = match engine {
            Engine::Chromium => {
                let missing = "chromium and chromedriver are not installed: `apt-get install chromium chromium-driver` (or set CHROMIUM and CHROMEDRIVER); scripts/test does this";
                let browser =
                    find_program("CHROMIUM", &["chromium", "chromium-browser"]).expect(missing);
                let driver = find_program("CHROMEDRIVER", &["chromedriver"]).expect(missing);
                let capabilities = json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": browser,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--window-size=1280,900", "--no-first-run"],
                    },
                });
                (driver, capabilities)
            }
            Engine::Firefox => {
                let missing = "firefox and geckodriver are not installed: `apt-get install firefox-esr` and `cargo install --locked geckodriver` (or set FIREFOX and GECKODRIVER); scripts/test does this";
                let browser = find_program("FIREFOX", &["firefox-esr", "firefox"]).expect(missing);
                let driver = find_program("GECKODRIVER", &["geckodriver"])
                    .or_else(|| {
                        let home =
                            std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| {
                                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo"))
                            })?;
                        Some(home.join("bin/geckodriver")).filter(|p| p.is_file())
                    })
                    .expect(missing);
                let capabilities = json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {"binary": browser, "args": ["-headless", "-width=1280", "-height=900"]},
                });
                (driver, capabilities)
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        crate::harness::eventually(
            Duration::from_secs(30),
            "the WebDriver server to listen",
            || http(port, "GET", "/status", None).ok().filter(|s| s["value"]["ready"] == true),
        );
        let capabilities = json!({"capabilities": {"alwaysMatch": capabilities}});
        let created = http(port, "POST", "/session", Some(&capabilities)).unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start a session: {created}"))
            .to_owned();
        let mut browser = Browser { driver, port, session };
        browser.call(
            "POST",
            "/timeouts",
            Some(json!({"implicit": 0, "pageLoad": 30000, "script": 30000})),
        );
        browser.port = port;
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let answer = http(self.port, method, &path, body.as_ref()).unwrap();
        answer["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    fn element(&self, css: &str) -> Option<String> {
        let found =
            self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT].as_str().map(str::to_owned)
    }

    fn must(&self, css: &str) -> String {
        self.element(css).unwrap_or_else(|| {
            let found =
                self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
            panic!("no element {css} on {}: {found}", self.url())
        })
    }

    /// Types `text` into the element, key by key, as a user would.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.must(css);
        self.call("POST", &format!("/element/{id}/value"), Some(json!({"text": text})));
    }

    /// Puts `text` into a form field at once (long text: typing it key by key is slow).
    pub fn fill(&self, css: &str, text: &str) {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": "document.querySelector(arguments[0]).value = arguments[1];", "args": [css, text]})),
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.must(css);
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    /// The visible text of the page's body.
    pub fn text(&self) -> String {
        match self.element("body") {
            Some(id) => self
                .call("GET", &format!("/element/{id}/text"), None)
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", None).as_str().unwrap_or_default().to_owned()
    }

    /// Waits (re-reading, never reloading) until `check` holds.
    pub fn wait_until(&self, timeout: Duration, what: &str, check: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not after {timeout:?}; the page says:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Saves a PNG of the window under the test's scratch directory; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

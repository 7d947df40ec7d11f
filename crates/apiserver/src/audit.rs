//! The audit log: one JSON line per mutating request (who, what, outcome, how long), written
//! by a background thread so requests never wait on the disk, into a file rotated when it
//! grows past a size (the previous file is kept as `<path>.1`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::auth::User;
use crate::request::Target;

#[derive(Clone)]
pub struct AuditLog {
    lines: mpsc::Sender<String>,
}

impl AuditLog {
    /// Starts the writer; `max_bytes` bounds the current file (0: unbounded).
    pub fn start(path: PathBuf, max_bytes: u64) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let (lines, queue) = mpsc::channel::<String>();
        // Who did what to which object: readable by the server's owner only.
        let open = |path: &PathBuf| {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            options.open(path)
        };
        let mut file = open(&path)?;
        let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
        std::thread::Builder::new().name("audit-log".into()).spawn(move || {
            while let Ok(line) = queue.recv() {
                if max_bytes > 0 && size + line.len() as u64 + 1 > max_bytes && size > 0 {
                    let _ = file.flush();
                    let rotated = path.with_extension(match path.extension() {
                        Some(e) => format!("{}.1", e.to_string_lossy()),
                        None => "1".to_owned(),
                    });
                    let _ = std::fs::rename(&path, &rotated);
                    match open(&path) {
                        Ok(f) => {
                            file = f;
                            size = 0;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot reopen the audit log");
                            return;
                        }
                    }
                }
                if writeln!(file, "{line}").is_ok() {
                    size += line.len() as u64 + 1;
                }
            }
        })?;
        Ok(AuditLog { lines })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        user: Option<&User>,
        headers: &http::HeaderMap,
        verb: &str,
        target: Option<&Target>,
        path: &str,
        code: u16,
        latency: Duration,
    ) {
        let header =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let event = json!({
            "timestamp": crate::clock::now_rfc3339(),
            "user": user.map(|u| u.name.as_str()).unwrap_or("system:anonymous"),
            "groups": user.map(|u| u.groups.clone()).unwrap_or_default(),
            "impersonatedUser": header("impersonate-user"),
            "verb": verb,
            "apiGroup": target.map(|t| t.group.as_str()),
            "resource": target.map(|t| t.resource.as_str()),
            "subresource": target.and_then(|t| t.subresource.as_deref()),
            "namespace": target.and_then(|t| t.namespace.as_deref()),
            "name": target.and_then(|t| t.name.as_deref()),
            "path": path,
            "code": code,
            "latencyMs": (latency.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0,
            "userAgent": header("user-agent"),
        });
        let _ = self.lines.send(event.to_string());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_are_written_and_the_file_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::start(path.clone(), 2_000).unwrap();
        let user = User { name: "alice".into(), groups: vec!["devs".into()] };
        for _ in 0..20 {
            log.record(
                Some(&user),
                &http::HeaderMap::new(),
                "create",
                None,
                "/api/v1/x",
                201,
                Duration::from_millis(3),
            );
        }
        drop(log);
        let rotated = dir.path().join("audit.log.1");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !rotated.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        let current = std::fs::read_to_string(&path).unwrap();
        let previous = std::fs::read_to_string(&rotated).unwrap();
        assert!(current.len() <= 2_000 && previous.len() <= 2_000, "bounded");
        let lines = current.lines().chain(previous.lines()).count();
        assert!((5..=20).contains(&lines), "{lines}");
        let event: serde_json::Value =
            serde_json::from_str(current.lines().next().unwrap()).unwrap();
        assert_eq!(
            (event["user"].as_str(), event["verb"].as_str(), event["code"].as_u64()),
            (Some("alice"), Some("create"), Some(201))
        );
    }
}

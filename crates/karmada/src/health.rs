//! `--health-probe-bind-address`: the plain-HTTP health endpoints of the controller-manager and
//! the scheduler (upstream's flag), for a kubelet's liveness and readiness probes. `/healthz`,
//! `/livez` and `/readyz` answer `ok` while the process serves; anything else is 404.

use std::net::SocketAddr;

use clap::Args as ClapArgs;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};

#[derive(ClapArgs, Debug, Clone, Default)]
pub struct ProbeFlags {
    /// Serve `/healthz`, `/livez` and `/readyz` over HTTP on this address (e.g. `0.0.0.0:10357`);
    /// unset: not served.
    #[arg(long)]
    pub health_probe_bind_address: Option<SocketAddr>,
}

impl ProbeFlags {
    /// Starts serving if an address was given; the task ends with the process.
    pub async fn start(&self) -> anyhow::Result<()> {
        let Some(addr) = self.health_probe_bind_address else { return Ok(()) };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--health-probe-bind-address {addr}: {e}"))?;
        tokio::spawn(serve(listener));
        Ok(())
    }
}

fn answer(request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match request.uri().path() {
        "/healthz" | "/livez" | "/readyz" => (StatusCode::OK, "ok"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}

async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request| async move {
                Ok::<_, std::convert::Infallible>(answer(&request))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .max_buf_size(16 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A probe that stalls is dropped rather than held open.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), connection).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn probes_answer_ok_and_other_paths_404() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        for path in ["/healthz", "/livez", "/readyz"] {
            let response = get(addr, path).await;
            assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
            assert!(response.ends_with("ok"), "{path}: {response}");
        }
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 404"));
    }
}

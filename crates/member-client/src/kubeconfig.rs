//! Where a kubeconfig says a cluster is: its server and the CA to trust it with — what a
//! component needs to reach a cluster with credentials of its own (a bootstrap token, a
//! dashboard user's token), leaving the kubeconfig's own credentials unused.

use std::path::Path;

use base64::Engine as _;

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("{path}: {message}")]
    Incomplete { path: String, message: String },
}

/// The server URL and CA (PEM) of `context` (default: the current one) in the kubeconfig at
/// `path`; the CA from `certificate-authority-data` or the file `certificate-authority` names.
pub fn server_and_ca(
    path: &Path,
    context: Option<&str>,
) -> Result<(String, String), KubeconfigError> {
    let shown = path.display().to_string();
    let incomplete = |message: String| KubeconfigError::Incomplete { path: shown.clone(), message };
    let config = kube::config::Kubeconfig::read_from(path)
        .map_err(|source| KubeconfigError::Read { path: shown.clone(), source })?;
    let context_name = context
        .map(str::to_owned)
        .or(config.current_context.clone())
        .ok_or_else(|| incomplete("no current context: name one".into()))?;
    let named = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| incomplete(format!("no context {context_name:?}")))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == named.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| incomplete(format!("no cluster {:?}", named.cluster)))?;
    let server =
        cluster.server.clone().ok_or_else(|| incomplete("the cluster has no server".into()))?;
    let ca = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| incomplete("certificate-authority-data is not base64 PEM".into()))?,
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| incomplete(format!("reading certificate-authority {file}: {e}")))?,
        (None, None) => return Err(incomplete("the cluster has no certificate authority".into())),
    };
    Ok((server, ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_ca_of_the_named_or_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, "PEM-B").unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode("PEM-A");
        let path = dir.path().join("config");
        std::fs::write(&path, format!("apiVersion: v1\nkind: Config\ncurrent-context: a\n\
            clusters:\n- name: a\n  cluster: {{server: 'https://a:1', certificate-authority-data: {data}}}\n\
            - name: b\n  cluster: {{server: 'https://b:2', certificate-authority: {}}}\n\
            contexts:\n- name: a\n  context: {{cluster: a, user: u}}\n- name: b\n  context: {{cluster: b, user: u}}\n\
            users:\n- name: u\n  user: {{token: t}}\n", ca_file.display())).unwrap();
        assert_eq!(server_and_ca(&path, None).unwrap(), ("https://a:1".into(), "PEM-A".into()));
        assert_eq!(
            server_and_ca(&path, Some("b")).unwrap(),
            ("https://b:2".into(), "PEM-B".into())
        );
        let missing = server_and_ca(&path, Some("c")).unwrap_err().to_string();
        assert!(missing.contains("no context \"c\""), "{missing}");
    }
}

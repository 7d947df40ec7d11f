//! Certificates: a CA generated on first start and kept in the data dir, a serving certificate
//! for the bind address, client certificates, the rustls server config, and kubeconfig files.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid PEM in {path}: {message}")]
    Pem { path: String, message: String },
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> PkiError {
    let context = context.into();
    move |source| PkiError::Io { context, source }
}

/// A certificate authority whose key lives in a directory.
pub struct Authority {
    /// Issues under the stored certificate's own subject and key identifier, so that what it
    /// signs chains to it whoever created it (this server, `karmadactl init`, a user's CA).
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate with its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params(common_name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    crate::files::write_private(path, contents.as_bytes())
        .map_err(io_err(format!("write {}", path.display())))
}

/// Reads a private key, refusing one that other users can read.
fn read_private(path: &Path) -> Result<String, PkiError> {
    crate::files::check_private(path).map_err(io_err(format!("refusing {}", path.display())))?;
    std::fs::read_to_string(path).map_err(io_err(format!("read {}", path.display())))
}

impl Authority {
    /// Loads `ca.crt`/`ca.key` from `dir`, creating them on first use.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<Authority, PkiError> {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if cert_path.exists() && key_path.exists() {
            // Possibly provided read-only (a mounted Secret): read, never rewrite.
            let key_pem = read_private(&key_path)?;
            let cert_pem = std::fs::read_to_string(&cert_path)
                .map_err(io_err(format!("read {}", cert_path.display())))?;
            return Authority::from_pem(&cert_pem, &key_pem);
        }
        crate::files::private_dir(dir).map_err(io_err(format!("create {}", dir.display())))?;
        let params = ca_params(common_name)?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        write_private(&key_path, &key.serialize_pem())?;
        std::fs::write(&cert_path, &cert_pem)
            .map_err(io_err(format!("write {}", cert_path.display())))?;
        Ok(Authority { issuer: Issuer::new(params, key), cert_pem })
    }

    /// A new CA, in memory (`karmadactl init` writes it into a Secret).
    pub fn generate(common_name: &str) -> Result<Authority, PkiError> {
        let params = ca_params(common_name)?;
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Authority { issuer: Issuer::new(params, key), cert_pem })
    }

    /// A CA from its certificate and key (PEM), e.g. one a user provides.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        let pem_error = |what: &str, e: rcgen::Error| PkiError::Pem {
            path: what.to_owned(),
            message: e.to_string(),
        };
        let key = KeyPair::from_pem(key_pem).map_err(|e| pem_error("the CA key", e))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| pem_error("the CA certificate", e))?;
        Ok(Authority { issuer, cert_pem: cert_pem.to_owned() })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A serving certificate for `hosts` (DNS names or IP addresses).
    pub fn serving(&self, hosts: &[String]) -> Result<Issued, PkiError> {
        self.serving_as(hosts, "karmada-apiserver", false)
    }

    /// A certificate for `hosts` that serves and, as a client, connects to its peers (an etcd
    /// member's), named `common_name`.
    pub fn peer(&self, hosts: &[String], common_name: &str) -> Result<Issued, PkiError> {
        self.serving_as(hosts, common_name, true)
    }

    fn serving_as(
        &self,
        hosts: &[String],
        common_name: &str,
        client_too: bool,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        for host in hosts {
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.clone().try_into()?),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if client_too {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        self.issue(params)
    }

    /// A client certificate: CN = user, O = groups (Kubernetes' x509 authentication).
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params.distinguished_name.push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        self.issue(params)
    }

    /// Signs a certificate signing request (PEM) as a client certificate, whatever else it
    /// asked for: client authentication only, no alternative names, valid until the start of
    /// the year after next. Returns the certificate (PEM).
    pub fn sign_client_request(&self, csr_pem: &str) -> Result<String, PkiError> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        csr.params.subject_alt_names.clear();
        csr.params.is_ca = IsCa::NoCa;
        let year = 1970
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() / 31_556_952)
                .unwrap_or(56) as i32;
        csr.params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        csr.params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
        Ok(csr.signed_by(&self.issuer)?.pem())
    }

    /// A client certificate kept in `dir/<file>.crt|.key`, created on first use.
    pub fn client_in(
        &self,
        dir: &Path,
        file: &str,
        user: &str,
        groups: &[&str],
    ) -> Result<Issued, PkiError> {
        let (cert_path, key_path) =
            (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
        if cert_path.exists() && key_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path)
                .map_err(io_err(format!("read {}", cert_path.display())))?;
            return Ok(Issued { cert_pem, key_pem: read_private(&key_path)? });
        }
        let issued = self.client(user, groups)?;
        std::fs::write(&cert_path, &issued.cert_pem)
            .map_err(io_err(format!("write {}", cert_path.display())))?;
        write_private(&key_path, &issued.key_pem)?;
        Ok(issued)
    }

    /// Verifies client certificates against this CA (chain and validity period).
    pub fn client_verifier(
        &self,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()) {
            let cert =
                cert.map_err(|e| PkiError::Pem { path: "ca.crt".into(), message: e.to_string() })?;
            roots.add(cert)?;
        }
        Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()?)
    }

    /// A rustls server config that serves `serving` and verifies (optional) client certificates
    /// against this CA. HTTP/2 and HTTP/1.1 are offered through ALPN.
    pub fn server_config(&self, serving: &Issued) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.cert_pem.as_bytes()) {
            let cert =
                cert.map_err(|e| PkiError::Pem { path: "ca.crt".into(), message: e.to_string() })?;
            roots.add(cert)?;
        }
        let verifier = Arc::new(DeferredClientVerifier { inner: self.client_verifier()? });
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(
            serving.cert_pem.as_bytes(),
        )
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::Pem { path: "serving cert".into(), message: e.to_string() })?;
        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes())
            .map_err(|e| PkiError::Pem { path: "serving key".into(), message: e.to_string() })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts any client certificate during the handshake (the client still has to prove it holds
/// the key), leaving the chain and validity check to authentication, so that a certificate from
/// another CA or an expired one gets a Kubernetes 401 naming the problem instead of a TLS alert.
#[derive(Debug)]
struct DeferredClientVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl rustls::server::danger::ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The identity of a presented client certificate chain, checked against `verifier` (chain to
/// the CA, validity period): `Ok(None)` when no certificate was presented.
pub fn check_client_certificate(
    verifier: &dyn rustls::server::danger::ClientCertVerifier,
    chain: Option<&[CertificateDer<'_>]>,
) -> Result<Option<(String, Vec<String>)>, String> {
    let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else {
        return Ok(None);
    };
    verifier
        .verify_client_cert(end_entity, intermediates, rustls::pki_types::UnixTime::now())
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired) => {
                "x509: the client certificate has expired".to_owned()
            }
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                "x509: the client certificate is signed by an unknown authority".to_owned()
            }
            other => format!("x509: the client certificate is not valid: {other}"),
        })?;
    identity_of(end_entity)
        .map(Some)
        .ok_or_else(|| "x509: the client certificate has no common name".into())
}

/// The subject (CN and O) of a certificate signing request in PEM.
pub fn request_subject(csr_pem: &str) -> Option<(String, Vec<String>)> {
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).ok()?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .ok()?;
    let subject = &csr.certification_request_info.subject;
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_owned)).collect();
    Some((user, groups))
}

/// The user and groups named by a client certificate (CN and O).
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_owned)).collect();
    Some((user, groups))
}

/// One context of a kubeconfig file.
#[derive(Clone, Debug)]
pub struct KubeconfigEntry {
    /// Used as the cluster, user and context name.
    pub name: String,
    pub server: String,
    pub ca_pem: String,
    pub client: Option<Issued>,
    pub token: Option<String>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// Writes (or merges into) a kubeconfig file: entries with the same name are replaced, others
/// kept. `current` becomes the current context when given (or when the file had none).
pub fn write_kubeconfig(
    path: &Path,
    entries: &[KubeconfigEntry],
    current: Option<&str>,
) -> Result<(), PkiError> {
    let doc: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_yaml::from_str(&text).unwrap_or_else(|_| serde_json::json!({}))
        }
        _ => serde_json::json!({}),
    };
    let doc = merge_kubeconfig(doc, entries, current);
    let text = serde_yaml::to_string(&doc).map_err(|e| PkiError::Io {
        context: "render kubeconfig".into(),
        source: io::Error::other(e),
    })?;
    write_kubeconfig_text(path, &text)
}

/// `doc` (a kubeconfig, or anything: it becomes one) with `entries` replacing those of the same
/// name; `current` becomes the current context when given (or when there was none).
pub fn merge_kubeconfig(
    mut doc: serde_json::Value,
    entries: &[KubeconfigEntry],
    current: Option<&str>,
) -> serde_json::Value {
    if !doc.is_object() {
        doc = serde_json::json!({});
    }
    doc["apiVersion"] = "v1".into();
    doc["kind"] = "Config".into();
    for (section, make) in [("clusters", 0usize), ("users", 1), ("contexts", 2)] {
        let mut list: Vec<serde_json::Value> = doc[section].as_array().cloned().unwrap_or_default();
        for entry in entries {
            list.retain(|item| item["name"] != entry.name.as_str());
            let item = match make {
                0 => serde_json::json!({"name": entry.name, "cluster": {
                    "server": entry.server, "certificate-authority-data": b64(&entry.ca_pem)}}),
                1 => {
                    let mut user = serde_json::Map::new();
                    if let Some(client) = &entry.client {
                        user.insert("client-certificate-data".into(), b64(&client.cert_pem).into());
                        user.insert("client-key-data".into(), b64(&client.key_pem).into());
                    }
                    if let Some(token) = &entry.token {
                        user.insert("token".into(), token.clone().into());
                    }
                    serde_json::json!({"name": entry.name, "user": user})
                }
                _ => {
                    serde_json::json!({"name": entry.name, "context": {"cluster": entry.name, "user": entry.name}})
                }
            };
            list.push(item);
        }
        doc[section] = serde_json::Value::Array(list);
    }
    let has_current = doc["current-context"].as_str().is_some_and(|s| !s.is_empty());
    match current {
        Some(name) => doc["current-context"] = name.into(),
        None if !has_current => {
            if let Some(first) = entries.first() {
                doc["current-context"] = first.name.clone().into();
            }
        }
        None => {}
    }
    if doc.get("preferences").is_none() {
        doc["preferences"] = serde_json::json!({});
    }
    doc
}

fn write_kubeconfig_text(path: &Path, text: &str) -> Result<(), PkiError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
    }
    // Atomically (concurrent readers such as kubectl never see half a file), and private: it
    // holds credentials.
    write_private(path, text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn issuer_cn(pem: &str) -> String {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = block.parse_x509().unwrap();
        cert.issuer().iter_common_name().next().unwrap().as_str().unwrap().to_owned()
    }

    #[test]
    fn a_second_server_on_the_same_pki_issues_under_the_stored_ca_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = Authority::load_or_create(dir.path(), "karmada-apiserver-ca").unwrap();
        let second = Authority::load_or_create(dir.path(), "karmada-apiserver-2-ca").unwrap();
        assert_eq!(first.cert_pem(), second.cert_pem(), "the stored CA is reused");
        let serving = second.serving(&["127.0.0.1".into()]).unwrap();
        assert_eq!(issuer_cn(&serving.cert_pem), "karmada-apiserver-ca");
    }

    #[test]
    fn client_certificates_are_checked_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::load_or_create(dir.path(), "ca").unwrap();
        let other =
            Authority::load_or_create(tempfile::tempdir().unwrap().path(), "other").unwrap();
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let verifier = ca.client_verifier().unwrap();
        let good = der(&ca.client("alice", &["devs"]).unwrap().cert_pem);
        assert_eq!(
            check_client_certificate(verifier.as_ref(), Some(&[good])).unwrap(),
            Some(("alice".into(), vec!["devs".into()]))
        );
        assert_eq!(check_client_certificate(verifier.as_ref(), None).unwrap(), None);
        let stranger = der(&other.client("mallory", &[]).unwrap().cert_pem);
        let why = check_client_certificate(verifier.as_ref(), Some(&[stranger])).unwrap_err();
        assert!(why.contains("unknown authority"), "{why}");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "old");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired = der(&ca.issue(params).unwrap().cert_pem);
        let why = check_client_certificate(verifier.as_ref(), Some(&[expired])).unwrap_err();
        assert!(why.contains("expired"), "{why}");
    }
}

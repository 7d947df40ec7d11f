//! ServiceAccount tokens: JWTs signed (ES256) by a key of the API server, issued through the
//! TokenRequest subresource (`kubectl create token SA`) and accepted as bearer tokens while
//! they have not expired and the ServiceAccount they name still exists with the same UID.
//! `TokenReview` answers whether a token is valid and whose it is.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
};
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

pub struct TokenSigner {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    random: SystemRandom,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub expires: i64,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenSigner {
    /// Loads `dir/sa.key` (PKCS#8 PEM), creating it on first use.
    pub fn load_or_create(dir: &std::path::Path) -> Result<TokenSigner, String> {
        let path = dir.join("sa.key");
        let pem = if path.exists() {
            // Whoever can read the signing key can forge any ServiceAccount's token.
            crate::files::check_private(&path).map_err(|e| e.to_string())?;
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?
        } else {
            let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
            let pem = key.serialize_pem();
            crate::files::private_dir(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            crate::files::write_private(&path, pem.as_bytes())
                .map_err(|e| format!("write {}: {e}", path.display()))?;
            pem
        };
        let der = rcgen::KeyPair::from_pem(&pem).map_err(|e| e.to_string())?.serialize_der();
        let random = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &random)
            .map_err(|e| format!("the service account key is not ECDSA P-256: {e}"))?;
        let public = key.public_key().as_ref().to_vec();
        Ok(TokenSigner { key, public, random })
    }

    /// A token for ServiceAccount `namespace/name` (with `uid`), valid for `seconds`.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        seconds: i64,
    ) -> Result<(String, i64), String> {
        let now = now_secs();
        let expires = now + seconds;
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let claims = json!({
            "iss": ISSUER, "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "aud": audiences, "iat": now, "nbf": now, "exp": expires,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        });
        let signing_input =
            format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = self
            .key
            .sign(&self.random, signing_input.as_bytes())
            .map_err(|_| "signing failed".to_owned())?;
        Ok((format!("{signing_input}.{}", B64.encode(signature.as_ref())), expires))
    }

    /// The claims of a token this server signed, if its signature holds and it has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let signature = B64.decode(signature).map_err(|_| "bad signature encoding")?;
        ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(format!("{header}.{payload}").as_bytes(), &signature)
            .map_err(|_| "the token was not signed by this control plane")?;
        let claims: Value =
            serde_json::from_slice(&B64.decode(payload).map_err(|_| "bad payload")?)
                .map_err(|_| "bad payload")?;
        if claims["iss"] != ISSUER {
            return Err("unknown issuer".into());
        }
        let expires = claims["exp"].as_i64().unwrap_or(0);
        if expires <= now_secs() {
            return Err("the token has expired".into());
        }
        let text =
            |p: &str| claims.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(Claims {
            namespace: text("/kubernetes.io/namespace"),
            name: text("/kubernetes.io/serviceaccount/name"),
            uid: text("/kubernetes.io/serviceaccount/uid"),
            expires,
        })
    }
}

/// Whether a bearer token looks like a JWT (three base64url parts, a JSON header).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

/// The audiences and lifetime a TokenRequest asks for.
pub fn token_request(request: &Value) -> Result<(Vec<String>, i64), apimachinery::ApiError> {
    if request.get("kind").and_then(Value::as_str).is_some_and(|k| k != "TokenRequest") {
        return Err(apimachinery::ApiError::bad_request("the body is not a TokenRequest"));
    }
    let audiences = request
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let seconds =
        request.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    Ok((audiences, seconds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issue_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let signer = TokenSigner::load_or_create(dir.path()).unwrap();
        let (token, _) = signer.issue("ci", "deployer", "u-1", &["api".into()], 600).unwrap();
        assert!(looks_like_jwt(&token));
        let claims = signer.verify(&token).unwrap();
        assert_eq!(
            (claims.namespace.as_str(), claims.name.as_str(), claims.uid.as_str()),
            ("ci", "deployer", "u-1")
        );
        let (expired, _) = signer.issue("ci", "deployer", "u-1", &[], -1).unwrap();
        assert!(signer.verify(&expired).unwrap_err().contains("expired"));
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(signer.verify(&tampered).is_err());
        let again = TokenSigner::load_or_create(dir.path()).unwrap();
        assert!(again.verify(&token).is_ok(), "the key persists");
        let other = TokenSigner::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.verify(&token).is_err());
    }
}

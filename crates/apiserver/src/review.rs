//! The review APIs that answer questions instead of storing objects: `kubectl auth can-i`
//! (SelfSubjectAccessReview, and SelfSubjectRulesReview for `--list`), SubjectAccessReview for
//! asking about someone else, and `kubectl auth whoami` (SelfSubjectReview); plus
//! impersonation (`kubectl --as`, `--as-group`).

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use crate::api::{Api, Body, User, json_response};
use crate::request::Target;
use apimachinery::ApiError;

pub fn is_review(t: &Target) -> bool {
    matches!(
        (t.group.as_str(), t.resource.as_str()),
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
                | "subjectaccessreviews"
                | "selfsubjectrulesreviews"
                | "localsubjectaccessreviews"
        ) | ("authentication.k8s.io", "selfsubjectreviews" | "tokenreviews")
    )
}

fn attributes_target(attrs: &Value, namespace_default: Option<&str>) -> Target {
    let s =
        |k: &str| attrs.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    Target {
        group: s("group").unwrap_or_default(),
        version: s("version").unwrap_or_default(),
        resource: s("resource").unwrap_or_default(),
        namespace: s("namespace").or(namespace_default.map(str::to_owned)),
        name: s("name"),
        subresource: s("subresource"),
    }
}

impl Api {
    /// Applies `Impersonate-User` / `Impersonate-Group` headers when `user` may impersonate.
    pub(crate) fn impersonate(
        &self,
        user: &User,
        headers: &http::HeaderMap,
    ) -> Result<User, ApiError> {
        let Some(as_user) = headers.get("impersonate-user").and_then(|v| v.to_str().ok()) else {
            if headers.contains_key("impersonate-group") {
                return Err(ApiError::bad_request(
                    "requested impersonation of groups without impersonating a user",
                ));
            }
            return Ok(user.clone());
        };
        let check = |resource: &str, namespace: Option<String>, name: &str| {
            let target = Target {
                group: String::new(),
                version: "v1".into(),
                resource: resource.into(),
                namespace,
                name: Some(name.into()),
                subresource: None,
            };
            self.authorizer.authorize(user, "impersonate", Some(&target), "")
        };
        match as_user.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
            Some((ns, name)) => check("serviceaccounts", Some(ns.to_owned()), name)?,
            None => check("users", None, as_user)?,
        }
        let mut groups = Vec::new();
        for value in headers.get_all("impersonate-group") {
            let group =
                value.to_str().map_err(|_| ApiError::bad_request("invalid Impersonate-Group"))?;
            check("groups", None, group)?;
            groups.push(group.to_owned());
        }
        if as_user.starts_with("system:serviceaccount:") {
            groups.push("system:serviceaccounts".into());
        }
        if as_user != "system:anonymous" {
            groups.push("system:authenticated".into());
        }
        Ok(User { name: as_user.to_owned(), groups })
    }

    pub(crate) async fn review(
        &self,
        parts: &http::request::Parts,
        target: &Target,
        body: Bytes,
        user: &User,
    ) -> Result<Response<Body>, ApiError> {
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed("reviews can only be created"));
        }
        let protobuf = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/vnd.kubernetes.protobuf"));
        let mut review: Value = if protobuf {
            proto::review_to_json(&body, &target.resource)
                .ok_or_else(|| ApiError::bad_request("invalid protobuf review"))?
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid review: {e}")))?
        };
        let spec = review.get("spec").cloned().unwrap_or(json!({}));
        let status = match target.resource.as_str() {
            "selfsubjectreviews" => {
                json!({"userInfo": {"username": user.name, "groups": user.groups}})
            }
            "tokenreviews" => {
                let token = spec.get("token").and_then(Value::as_str).unwrap_or_default();
                let checked = if crate::satoken::looks_like_jwt(token) {
                    self.service_account_user(token).await
                } else if crate::api::bootstrap_token_parts(token).is_some() {
                    self.bootstrap_user(token).await
                } else {
                    Err(ApiError::unauthorized())
                };
                match checked {
                    Ok(u) => json!({"authenticated": true,
                        "user": {"username": u.name, "groups": u.groups}}),
                    Err(e) => json!({"authenticated": false, "error": e.message}),
                }
            }
            "selfsubjectrulesreviews" => {
                let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or_default();
                self.rules_review(user, namespace)
            }
            resource => {
                // Whose access: the caller's own, or (SubjectAccessReview) the spec's user.
                let subject = if resource.starts_with("self") {
                    user.clone()
                } else {
                    let groups = spec
                        .get("groups")
                        .and_then(Value::as_array)
                        .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default();
                    User {
                        name: spec
                            .get("user")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        groups,
                    }
                };
                let decision = if let Some(attrs) = spec.get("resourceAttributes") {
                    let namespace = target.namespace.as_deref();
                    let t = attributes_target(attrs, namespace);
                    let verb = attrs.get("verb").and_then(Value::as_str).unwrap_or_default();
                    self.authorizer.authorize(&subject, verb, Some(&t), "")
                } else if let Some(attrs) = spec.get("nonResourceAttributes") {
                    let verb = attrs.get("verb").and_then(Value::as_str).unwrap_or_default();
                    let path = attrs.get("path").and_then(Value::as_str).unwrap_or_default();
                    self.authorizer.authorize(&subject, verb, None, path)
                } else {
                    return Err(ApiError::bad_request(
                        "spec.resourceAttributes or spec.nonResourceAttributes is required",
                    ));
                };
                match decision {
                    Ok(()) => json!({"allowed": true}),
                    // kubectl prints a reason after "no"; Kubernetes gives none for RBAC denials.
                    Err(_) => json!({"allowed": false}),
                }
            }
        };
        review["status"] = status;
        if review.get("metadata").is_none() {
            review["metadata"] = json!({});
        }
        Ok(json_response(201, &review))
    }

    fn rules_review(&self, user: &User, namespace: &str) -> Value {
        let ns = (!namespace.is_empty()).then_some(namespace);
        let Some(rbac) = &self.rbac else {
            return json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false});
        };
        if user.groups.iter().any(|g| g == crate::rbac::MASTERS) {
            return json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false});
        }
        let rules = rbac.index.read().rules_for(user, ns);
        let resource_rules: Vec<Value> = rules
            .iter()
            .filter(|r| r.non_resource_urls.is_empty())
            .map(|r| {
                let mut rule =
                    json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                if !r.resource_names.is_empty() {
                    rule["resourceNames"] = json!(r.resource_names);
                }
                rule
            })
            .collect();
        let non_resource: Vec<Value> = rules
            .iter()
            .filter(|r| !r.non_resource_urls.is_empty())
            .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
            .collect();
        json!({"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": false})
    }
}

/// Just enough of Kubernetes' protobuf encoding to read the review requests kubectl sends
/// that way (`kubectl auth can-i` and `whoami` use protobuf for these built-in types): the
/// `k8s\0` envelope (runtime.Unknown) and the review messages' string fields.
/// The length-delimited fields of a protobuf message (field number, payload).
pub fn proto_fields(b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    proto::fields(b)
}

/// The value of varint field `field` of a protobuf message, if present.
pub fn proto_varint_field(mut b: &[u8], field: u64) -> Option<u64> {
    while !b.is_empty() {
        let (key, rest) = proto::varint(b)?;
        b = rest;
        match key & 7 {
            0 => {
                let (value, rest) = proto::varint(b)?;
                if key >> 3 == field {
                    return Some(value);
                }
                b = rest;
            }
            2 => {
                let (len, rest) = proto::varint(b)?;
                b = rest.get(usize::try_from(len).ok()?..)?;
            }
            5 => b = b.get(4..)?,
            1 => b = b.get(8..)?,
            _ => return None,
        }
    }
    None
}

mod proto {
    use serde_json::{Map, Value, json};

    /// (field number, payload) of each length-delimited field; varints are skipped.
    pub fn fields(mut b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (key, rest) = varint(b)?;
            b = rest;
            match key & 7 {
                0 => b = varint(b)?.1,
                2 => {
                    let (len, rest) = varint(b)?;
                    let len = usize::try_from(len).ok()?;
                    if rest.len() < len {
                        return None;
                    }
                    out.push((key >> 3, &rest[..len]));
                    b = &rest[len..];
                }
                5 => b = b.get(4..)?,
                1 => b = b.get(8..)?,
                _ => return None,
            }
        }
        Some(out)
    }

    pub fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
        let mut value = 0u64;
        for (i, byte) in b.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((value, &b[i + 1..]));
            }
        }
        None
    }

    fn text(b: &[u8]) -> Value {
        Value::String(String::from_utf8_lossy(b).into_owned())
    }

    /// A message of string fields, named by number.
    fn strings(b: &[u8], names: &[(u64, &str)]) -> Option<Value> {
        let mut map = Map::new();
        for (n, v) in fields(b)? {
            if let Some((_, name)) = names.iter().find(|(k, _)| *k == n) {
                map.insert((*name).to_owned(), text(v));
            }
        }
        Some(Value::Object(map))
    }

    const RESOURCE_ATTRIBUTES: &[(u64, &str)] = &[
        (1, "namespace"),
        (2, "verb"),
        (3, "group"),
        (4, "version"),
        (5, "resource"),
        (6, "subresource"),
        (7, "name"),
    ];
    const NON_RESOURCE_ATTRIBUTES: &[(u64, &str)] = &[(1, "path"), (2, "verb")];

    pub fn review_to_json(body: &[u8], resource: &str) -> Option<Value> {
        let unknown = body.strip_prefix(b"k8s\0")?;
        let mut type_meta = json!({});
        let mut raw: &[u8] = &[];
        for (n, v) in fields(unknown)? {
            match n {
                1 => type_meta = strings(v, &[(1, "apiVersion"), (2, "kind")])?,
                2 => raw = v,
                _ => {}
            }
        }
        let mut spec = Map::new();
        for (n, v) in fields(raw)? {
            if n != 2 {
                continue;
            }
            for (field, value) in fields(v)? {
                match (resource, field) {
                    ("selfsubjectrulesreviews", 1) => {
                        spec.insert("namespace".into(), text(value));
                    }
                    ("selfsubjectreviews", _) | ("selfsubjectrulesreviews", _) => {}
                    (_, 1) => {
                        spec.insert(
                            "resourceAttributes".into(),
                            strings(value, RESOURCE_ATTRIBUTES)?,
                        );
                    }
                    (_, 2) => {
                        spec.insert(
                            "nonResourceAttributes".into(),
                            strings(value, NON_RESOURCE_ATTRIBUTES)?,
                        );
                    }
                    (_, 3) => {
                        spec.insert("user".into(), text(value));
                    }
                    (_, 4) => {
                        let groups = spec.entry("groups").or_insert_with(|| json!([]));
                        if let Some(list) = groups.as_array_mut() {
                            list.push(text(value));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(json!({
            "apiVersion": type_meta.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": type_meta.get("kind").cloned().unwrap_or(Value::Null),
            "metadata": {},
            "spec": spec,
        }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn field(n: u64, payload: &[u8]) -> Vec<u8> {
            let mut out = vec![((n << 3) | 2) as u8, payload.len() as u8];
            out.extend_from_slice(payload);
            out
        }

        #[test]
        fn a_self_subject_access_review_decodes() {
            let attrs = [
                field(1, b"team-a"),
                field(2, b"get"),
                field(5, b"configmaps"),
                field(7, b"settings"),
            ]
            .concat();
            let spec = field(1, &attrs);
            let raw = [field(1, b""), field(2, &spec)].concat();
            let type_meta =
                [field(1, b"authorization.k8s.io/v1"), field(2, b"SelfSubjectAccessReview")]
                    .concat();
            let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
            let review = review_to_json(&body, "selfsubjectaccessreviews").unwrap();
            assert_eq!(review["kind"], "SelfSubjectAccessReview");
            assert_eq!(review["spec"]["resourceAttributes"]["verb"], "get");
            assert_eq!(review["spec"]["resourceAttributes"]["name"], "settings");
            assert_eq!(review["spec"]["resourceAttributes"]["namespace"], "team-a");
        }
    }
}

//! The review APIs that answer questions instead of storing objects: `kubectl auth can-i`
//! (SelfSubjectAccessReview, and SelfSubjectRulesReview for `--list`), SubjectAccessReview for
//! asking about someone else, and `kubectl auth whoami` (SelfSubjectReview); plus
//! impersonation (`kubectl --as`, `--as-group`).

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use super::Api;
use crate::auth::{User, bootstrap_token_parts};
use crate::reply::{Body, respond};
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
            let other = headers.keys().any(|h| {
                let h = h.as_str();
                h == "impersonate-group"
                    || h == "impersonate-uid"
                    || h.starts_with("impersonate-extra-")
            });
            if other {
                return Err(ApiError::bad_request(
                    "requested impersonation of groups, a uid or extras without impersonating a user",
                ));
            }
            return Ok(user.clone());
        };
        let check_in = |group: &str,
                        resource: &str,
                        subresource: Option<&str>,
                        namespace: Option<String>,
                        name: &str| {
            let target = Target {
                group: group.into(),
                version: "v1".into(),
                resource: resource.into(),
                namespace,
                name: Some(name.into()),
                subresource: subresource.map(str::to_owned),
            };
            self.authorizer.authorize(user, "impersonate", Some(&target), "")
        };
        let check = |resource: &str, namespace: Option<String>, name: &str| {
            check_in("", resource, None, namespace, name)
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
        // Every impersonated attribute needs its own permission (Kubernetes: `uids` and
        // `userextras/<key>` in authentication.k8s.io).
        for value in headers.get_all("impersonate-uid") {
            let uid =
                value.to_str().map_err(|_| ApiError::bad_request("invalid Impersonate-Uid"))?;
            check_in("authentication.k8s.io", "uids", None, None, uid)?;
        }
        for (header, value) in headers {
            if let Some(key) = header.as_str().strip_prefix("impersonate-extra-") {
                let value = value
                    .to_str()
                    .map_err(|_| ApiError::bad_request("invalid Impersonate-Extra value"))?;
                let key = crate::request::percent_decode_path(key);
                check_in("authentication.k8s.io", "userextras", Some(&key), None, value)?;
            }
        }
        // As Kubernetes: groups given are the authority; without them a ServiceAccount is in
        // its fixed groups.
        if groups.is_empty()
            && let Some((ns, _)) =
                as_user.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':'))
        {
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{ns}"));
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
        let (_, format) = crate::request::negotiate(&parts.headers, true)?;
        let mut review = crate::encoding::decode_body(&parts.headers, &body)?.object;
        if !review.is_object() {
            return Err(ApiError::bad_request("a review must be an object"));
        }
        let spec = review.get("spec").cloned().unwrap_or(json!({}));
        let status = match target.resource.as_str() {
            "selfsubjectreviews" => {
                json!({"userInfo": {"username": user.name, "groups": user.groups}})
            }
            "tokenreviews" => {
                let token = spec.get("token").and_then(Value::as_str).unwrap_or_default();
                let checked = if crate::satoken::looks_like_jwt(token) {
                    self.service_account_user(token).await
                } else if bootstrap_token_parts(token).is_some() {
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
        let (content_type, bytes) = crate::encoding::object_body(format, &review);
        Ok(respond(201, content_type, bytes))
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

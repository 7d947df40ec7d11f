//! Wire decoding: URL paths to targets, query strings, content negotiation.

use std::collections::HashMap;

use apimachinery::ApiError;
use http::HeaderMap;

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Version,
    Health(&'static str),
    Metrics,
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    /// `/api`
    CoreGroup,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    Resource(Target),
    /// `<cluster-scoped resource>/<name>/proxy[/<path>]`, or any `<subresource>/<path>`: a
    /// request passed on to what the object stands for (a member cluster's API server for a
    /// Cluster, karmada-search's cache for `search/cache/...`); the path after the subresource
    /// (from its first `/`, as sent; at least `/`) is the rest.
    Connect(Target, String),
}

/// A resource request: `[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn route(path: &str) -> Option<Route> {
    if let Some(route) = connect_route(path) {
        return Some(route);
    }
    let path = path.trim_end_matches('/');
    match path {
        "/version" => return Some(Route::Version),
        "/healthz" => return Some(Route::Health("healthz")),
        "/livez" => return Some(Route::Health("livez")),
        "/readyz" => return Some(Route::Health("readyz")),
        "/metrics" => return Some(Route::Metrics),
        "/openapi/v2" | "/swagger-2.0.0.pb-v1" | "/swagger.json" => return Some(Route::OpenApiV2),
        "/openapi/v3" => return Some(Route::OpenApiV3Index),
        "/api" => return Some(Route::CoreGroup),
        "/apis" => return Some(Route::Groups),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/openapi/v3/") {
        return Some(Route::OpenApiV3(rest.to_owned()));
    }
    if let Some(rest) = path
        .strip_prefix("/healthz/")
        .or_else(|| path.strip_prefix("/readyz/"))
        .or_else(|| path.strip_prefix("/livez/"))
    {
        let _ = rest;
        return Some(Route::Health("check"));
    }
    // Each segment is percent-decoded once (a name sent as `system%3Aadmin` is `system:admin`);
    // a segment that decodes to something holding `/` can name nothing.
    let decoded: Vec<String> = path.split('/').skip(1).map(percent_decode_path).collect();
    if decoded.iter().any(|s| s.contains('/')) {
        return None;
    }
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (String::new(), (*version).to_owned(), rest),
        ["apis", group] => return Some(Route::Group((*group).to_owned())),
        ["apis", group, version, rest @ ..] => ((*group).to_owned(), (*version).to_owned(), rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::ResourceList { group, version });
    }
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let owned = |s: &&str| Some((*s).to_owned());
    let target = match rest {
        // A namespace's own subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] => Target {
            group,
            version,
            resource: "namespaces".into(),
            namespace: None,
            name: owned(name),
            subresource: owned(sub),
        },
        ["namespaces", ns, resource, tail @ ..] => match tail {
            [] => Target {
                group,
                version,
                resource: (*resource).into(),
                namespace: owned(ns),
                name: None,
                subresource: None,
            },
            [name] => Target {
                group,
                version,
                resource: (*resource).into(),
                namespace: owned(ns),
                name: owned(name),
                subresource: None,
            },
            [name, sub] => Target {
                group,
                version,
                resource: (*resource).into(),
                namespace: owned(ns),
                name: owned(name),
                subresource: owned(sub),
            },
            _ => return None,
        },
        [resource] => Target {
            group,
            version,
            resource: (*resource).into(),
            namespace: None,
            name: None,
            subresource: None,
        },
        [resource, name] => Target {
            group,
            version,
            resource: (*resource).into(),
            namespace: None,
            name: owned(name),
            subresource: None,
        },
        [resource, name, sub] => Target {
            group,
            version,
            resource: (*resource).into(),
            namespace: None,
            name: owned(name),
            subresource: owned(sub),
        },
        _ => return None,
    };
    Some(Route::Resource(target))
}

/// `/apis/<group>/<version>/<resource>/<name>/proxy[/<rest>]`, or
/// `/apis/<group>/<version>/<resource>/<name>/<subresource>/<rest>` (a path deeper than any
/// plain subresource), of cluster-scoped objects only; the rest of the path is passed on as
/// sent.
fn connect_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/apis/")?;
    let mut parts = rest.splitn(6, '/');
    let (group, version, resource, name, sub) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let tail = parts.next();
    if resource == "namespaces" || (sub != "proxy" && tail.is_none_or(str::is_empty)) {
        return None;
    }
    let name = percent_decode_path(name);
    if [group, version, resource, sub].iter().any(|s| s.is_empty())
        || name.is_empty()
        || name.contains('/')
    {
        return None;
    }
    let target = Target {
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        namespace: None,
        name: Some(name),
        subresource: Some(sub.to_owned()),
    };
    Some(Route::Connect(target, format!("/{}", tail.unwrap_or_default())))
}

/// Decoded query parameters (the last occurrence of a key wins; empty pairs are ignored, as
/// kube-rs sends `?&limit=500`).
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value {v:?} for query parameter {key}"))
            }),
        }
    }
}

/// Percent-decodes a URL path segment (`+` is itself there, unlike in a query).
pub fn percent_decode_path(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    percent_decode(&s.replace('+', "%2B"))
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the client accepts, reduced to what we can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    Json,
    Table,
    /// `as=PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
}

/// How a response body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    /// Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), for built-in kinds and
    /// PartialObjectMetadata.
    Protobuf,
}

struct MediaType {
    essence: String,
    params: HashMap<String, String>,
}

fn parse_media_types(header: &str) -> Vec<MediaType> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let essence = pieces.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
                })
                .collect();
            Some(MediaType { essence, params })
        })
        .collect()
}

/// Picks the response form from the Accept header, in the client's order of preference.
/// `protobuf` says whether the resource's objects have a protobuf encoding (built-in kinds);
/// metadata-only answers can always be protobuf.
pub fn negotiate(headers: &HeaderMap, protobuf: bool) -> Result<(Wanted, Format), ApiError> {
    let Some(accept) = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok((Wanted::Json, Format::Json));
    };
    let types = parse_media_types(accept);
    if types.is_empty() {
        return Ok((Wanted::Json, Format::Json));
    }
    let meta_group = |t: &MediaType| t.params.get("g").map(String::as_str) == Some("meta.k8s.io");
    for t in &types {
        let format = match t.essence.as_str() {
            "application/json" | "application/yaml" | "*/*" | "application/*" => Format::Json,
            "application/vnd.kubernetes.protobuf" => Format::Protobuf,
            _ => continue,
        };
        match t.params.get("as").map(String::as_str) {
            None if format == Format::Protobuf && !protobuf => continue,
            None => return Ok((Wanted::Json, format)),
            Some("Table") if meta_group(t) && format == Format::Json => {
                return Ok((Wanted::Table, format));
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") if meta_group(t) => {
                return Ok((Wanted::Metadata, format));
            }
            Some(_) => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io{} (asked for {accept:?})",
        if protobuf { ", application/vnd.kubernetes.protobuf" } else { "" }
    )))
}

/// Which aggregated discovery version the client asked for, if any.
pub fn aggregated_discovery(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(http::header::ACCEPT)?.to_str().ok()?;
    for t in parse_media_types(accept) {
        if t.essence == "application/json" || t.essence == "*/*" {
            let g = t.params.get("g").map(String::as_str);
            let a = t.params.get("as").map(String::as_str);
            if g == Some("apidiscovery.k8s.io") && a == Some("APIGroupDiscoveryList") {
                match t.params.get("v").map(String::as_str) {
                    Some("v2") => return Some("v2"),
                    Some("v2beta1") => return Some("v2beta1"),
                    _ => continue,
                }
            }
            if t.params.is_empty() {
                return None;
            }
        }
    }
    None
}

/// The body formats a write may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicPatch,
    ApplyPatch,
    Protobuf,
    Other,
}

pub fn body_type(headers: &HeaderMap) -> BodyType {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        // kubectl scale --current-replicas sends no Content-Type.
        return BodyType::Json;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/json" => BodyType::Json,
        "application/yaml" | "text/yaml" | "application/x-yaml" => BodyType::Yaml,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicPatch,
        "application/apply-patch+yaml" | "application/apply-patch+json" => BodyType::ApplyPatch,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        _ => BodyType::Other,
    }
}

/// How deeply a YAML document may nest its flow collections (`[`, `{`). The YAML decoder
/// refuses more than 128 levels anyway, but only after parsing, which takes time quadratic in
/// the depth of flow mappings (70 s for 100,000 levels): this is checked first, in one pass.
pub const MAX_YAML_FLOW_DEPTH: usize = 128;

/// The deepest nesting of flow collections in a YAML text, counted in one pass (quoted
/// strings, comments and block scalars skipped). Stops counting past `limit`.
pub fn yaml_flow_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    // Indentation of the line that opened a block scalar (`|`, `>`): more-indented lines after
    // it are text.
    let mut block_scalar: Option<usize> = None;
    let mut line_start = true;
    let mut indent = 0usize;
    while i < text.len() {
        let c = text[i];
        if line_start {
            indent = text[i..].iter().take_while(|b| **b == b' ').count();
            let rest = &text[i + indent..];
            let blank = rest.first().is_none_or(|b| *b == b'\n' || *b == b'\r');
            match block_scalar {
                Some(opener) if blank || indent > opener => {
                    // Skip the whole line.
                    i += rest.iter().position(|b| *b == b'\n').map_or(rest.len(), |p| p + 1)
                        + indent;
                    continue;
                }
                _ => block_scalar = None,
            }
            line_start = false;
            i += indent;
            continue;
        }
        match c {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b'#' if i == 0 || text[i - 1].is_ascii_whitespace() => {
                i += text[i..].iter().position(|b| *b == b'\n').unwrap_or(text.len() - i);
                continue;
            }
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                i += 1;
                while i < text.len() {
                    if text[i] == b'\'' {
                        if text.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'|' | b'>' if depth == 0 => {
                // A block scalar indicator ends its line (after optional modifiers).
                let tail = &text[i + 1..];
                let end = tail.iter().position(|b| *b == b'\n').unwrap_or(tail.len());
                let modifiers = tail[..end].split(|b| *b == b'#').next().unwrap_or_default();
                if modifiers
                    .iter()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b' ' | b'\r'))
                {
                    block_scalar = Some(indent);
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Parses a JSON or YAML document into a value.
pub fn parse_document(body: &[u8], yaml: bool) -> Result<serde_json::Value, ApiError> {
    // JSON is YAML: an apply patch sent as JSON (as kube clients do) is read by the JSON
    // parser, several times faster; anything it refuses is read as YAML, which decides the
    // error.
    let json_text = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if yaml
        && json_text
        && let Ok(value) = serde_json::from_slice(body)
    {
        return Ok(value);
    }
    if yaml {
        if yaml_flow_depth(body, MAX_YAML_FLOW_DEPTH) > MAX_YAML_FLOW_DEPTH {
            return Err(ApiError::bad_request(format!(
                "error decoding YAML: collections nested more than {MAX_YAML_FLOW_DEPTH} levels deep"
            )));
        }
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nesting_is_counted_in_one_pass() {
        let deep = |n: usize| format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
        assert_eq!(yaml_flow_depth(deep(3).as_bytes(), 128), 3);
        assert_eq!(yaml_flow_depth(deep(100_000).as_bytes(), 128), 129, "stops past the limit");
        // Brackets in strings, comments and block scalars are text.
        let text =
            "a: \"[[[[\"\nb: '{{{{'\n# [[[[\nc: |\n  {{{{{{\n  [[[\nd: [1, [2]]\ne: >-\n    {{\n";
        assert_eq!(yaml_flow_depth(text.as_bytes(), 128), 2);
        let e = parse_document(deep(100_000).as_bytes(), true).unwrap_err();
        assert!(e.message.contains("nested more than 128 levels"), "{e:?}");
        // Ordinary documents are unaffected.
        let doc = "apiVersion: v1\nkind: ConfigMap\ndata:\n  script: |\n    if [ -f x ]; then { echo; }; fi\n  json: '{\"a\": [1]}'\n";
        assert_eq!(parse_document(doc.as_bytes(), true).unwrap()["kind"], "ConfigMap");
    }

    #[test]
    fn apply_bodies_read_the_same_as_json_or_yaml() {
        let json_text = br#" {"apiVersion":"v1","kind":"ConfigMap","data":{"n":"1","x":1.5}}"#;
        let yaml_text = b"apiVersion: v1\nkind: ConfigMap\ndata:\n  n: \"1\"\n  x: 1.5\n";
        let a = parse_document(json_text, true).unwrap();
        assert_eq!(a, parse_document(yaml_text, true).unwrap());
        assert_eq!(a, parse_document(json_text, false).unwrap());
        // A YAML flow mapping that is not JSON is still YAML.
        assert_eq!(parse_document(b"{kind: ConfigMap}", true).unwrap()["kind"], "ConfigMap");
        // Neither: the YAML parser's error.
        let e = parse_document(b"{kind: [", true).unwrap_err();
        assert!(format!("{e:?}").contains("YAML"), "{e:?}");
    }

    fn t(
        group: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(Target {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        })
    }

    #[test]
    fn proxy_routes() {
        let proxy = |name: &str, rest: &str| {
            let Some(Route::Resource(target)) =
                Some(t("cluster.karmada.io", "clusters", None, Some(name), Some("proxy")))
            else {
                unreachable!()
            };
            Some(Route::Connect(target, rest.to_owned()))
        };
        let search_target = |resource: &str, name: &str| Target {
            group: "search.karmada.io".into(),
            version: "v1alpha1".into(),
            resource: resource.into(),
            namespace: None,
            name: Some(name.into()),
            subresource: None,
        };
        let search = |resource: &str, name: &str, sub: &str, rest: &str| {
            let target = Target { subresource: Some(sub.into()), ..search_target(resource, name) };
            Some(Route::Connect(target, rest.into()))
        };
        for (path, want) in [
            (
                "/apis/cluster.karmada.io/v1/clusters/member1/proxy/api/v1/namespaces/default/pods",
                proxy("member1", "/api/v1/namespaces/default/pods"),
            ),
            ("/apis/cluster.karmada.io/v1/clusters/member1/proxy", proxy("member1", "/")),
            ("/apis/cluster.karmada.io/v1/clusters/member1/proxy/", proxy("member1", "/")),
            (
                "/apis/cluster.karmada.io/v1/clusters/member1/proxy/api/v1/namespaces/a%2Fb/pods/",
                proxy("member1", "/api/v1/namespaces/a%2Fb/pods/"),
            ),
            (
                "/apis/cluster.karmada.io/v1/clusters/member1/proxyx",
                Some(t("cluster.karmada.io", "clusters", None, Some("member1"), Some("proxyx"))),
            ),
            ("/apis/cluster.karmada.io/v1/clusters/a%2Fb/proxy/api", None),
            // Deeper than a subresource: karmada-search's cache and proxy.
            (
                "/apis/search.karmada.io/v1alpha1/search/cache/apis/apps/v1/deployments",
                search("search", "cache", "apis", "/apps/v1/deployments"),
            ),
            (
                "/apis/search.karmada.io/v1alpha1/proxying/karmada/proxy/api/v1/nodes",
                search("proxying", "karmada", "proxy", "/api/v1/nodes"),
            ),
            // A plain subresource, and anything under a namespace, is not.
            (
                "/apis/search.karmada.io/v1alpha1/search/cache/apis",
                Some(Route::Resource(Target {
                    subresource: Some("apis".into()),
                    ..search_target("search", "cache")
                })),
            ),
            (
                "/apis/apps/v1/namespaces/default/deployments/web/scale",
                Some(t("apps", "deployments", Some("default"), Some("web"), Some("scale"))),
            ),
        ] {
            assert_eq!(route(path), want, "{path}");
        }
    }

    #[test]
    fn routes() {
        let cases = [
            ("/api/v1/namespaces", Some(t("", "namespaces", None, None, None))),
            ("/api/v1/namespaces/default", Some(t("", "namespaces", None, Some("default"), None))),
            (
                "/api/v1/namespaces/x/status",
                Some(t("", "namespaces", None, Some("x"), Some("status"))),
            ),
            (
                "/api/v1/namespaces/default/configmaps",
                Some(t("", "configmaps", Some("default"), None, None)),
            ),
            (
                "/api/v1/namespaces/default/configmaps/a",
                Some(t("", "configmaps", Some("default"), Some("a"), None)),
            ),
            (
                "/apis/example.com/v1/namespaces/d/widgets/w/scale",
                Some(t("example.com", "widgets", Some("d"), Some("w"), Some("scale"))),
            ),
            ("/apis/example.com/v1/widgets", Some(t("example.com", "widgets", None, None, None))),
            (
                "/apis/example.com/v1",
                Some(Route::ResourceList { group: "example.com".into(), version: "v1".into() }),
            ),
            ("/apis/example.com", Some(Route::Group("example.com".into()))),
            ("/apis", Some(Route::Groups)),
            ("/version", Some(Route::Version)),
            (
                "/api/v1/namespaces/default/configmaps/a%20b%3Ac+d",
                Some(t("", "configmaps", Some("default"), Some("a b:c+d"), None)),
            ),
            ("/api/v1/namespaces/default/configmaps/a%2Fb", None),
            ("/nope", None),
        ];
        for (path, want) in cases {
            assert_eq!(route(path), want, "{path}");
        }
    }

    #[test]
    fn queries() {
        let q = Query::parse(Some("&limit=500&labelSelector=app%3Ddemo&x=a+b&&watch=true"));
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(q.get("labelSelector"), Some("app=demo"));
        assert_eq!(q.get("x"), Some("a b"));
        assert!(q.flag("watch"));
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }

    #[test]
    fn negotiation() {
        let mut headers = HeaderMap::new();
        let mut check = |accept: &str, protobuf: bool| {
            headers.insert(http::header::ACCEPT, accept.parse().unwrap());
            negotiate(&headers, protobuf)
        };
        assert_eq!(
            check(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                true
            ),
            Ok((Wanted::Table, Format::Json))
        );
        let client_go = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(check(client_go, false), Ok((Wanted::Json, Format::Json)));
        assert_eq!(check(client_go, true), Ok((Wanted::Json, Format::Protobuf)));
        assert_eq!(check("application/json, */*", true), Ok((Wanted::Json, Format::Json)));
        assert!(check("application/vnd.kubernetes.protobuf", false).is_err());
        assert_eq!(
            check(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                false
            ),
            Ok((Wanted::Metadata, Format::Protobuf))
        );
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(aggregated_discovery(&h), Some("v2beta1"));
        h.insert(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(aggregated_discovery(&h), Some("v2"));
        h.insert(http::header::ACCEPT, "application/json, */*".parse().unwrap());
        assert_eq!(aggregated_discovery(&h), None);
    }
}

/// What a request does, as Kubernetes names it for authorization, audit and metrics: a
/// resource verb, or for a path outside the resource API (discovery, health, metrics) the
/// HTTP method in lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    /// A resource request whose method has no verb (e.g. OPTIONS on a resource path).
    Unknown,
    NonResource(&'static str),
}

impl Verb {
    /// The verb of a request with `method` on `route` (`watch=true` makes a list a watch).
    pub fn of(method: &http::Method, route: Option<&Route>, query: &Query) -> Verb {
        use http::Method;
        if let Some(Route::Connect(..)) = route {
            // As Kubernetes authorizes proxy requests: by the HTTP method.
            return match *method {
                Method::GET | Method::HEAD => Verb::Get,
                Method::POST => Verb::Create,
                Method::PUT => Verb::Update,
                Method::PATCH => Verb::Patch,
                Method::DELETE => Verb::Delete,
                _ => Verb::Unknown,
            };
        }
        let Some(Route::Resource(t)) = route else {
            return Verb::NonResource(match *method {
                Method::GET => "get",
                Method::HEAD => "head",
                Method::POST => "post",
                Method::PUT => "put",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                Method::OPTIONS => "options",
                _ => "unknown",
            });
        };
        match (method, t.name.is_some()) {
            (&Method::GET, false) if query.flag("watch") => Verb::Watch,
            (&Method::GET, false) => Verb::List,
            (&Method::GET, true) => Verb::Get,
            (&Method::POST, _) => Verb::Create,
            (&Method::PUT, _) => Verb::Update,
            (&Method::PATCH, _) => Verb::Patch,
            (&Method::DELETE, true) => Verb::Delete,
            (&Method::DELETE, false) => Verb::DeleteCollection,
            _ => Verb::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Unknown => "unknown",
            Verb::NonResource(method) => method,
        }
    }

    /// Whether it changes stored objects (what the audit log records).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }
}

//! Validation of built-in kinds beyond their JSON shape: the rules of Kubernetes' API
//! validation that users meet most (object names per kind, pod specs, workload selectors,
//! services, jobs, config keys), with Kubernetes' field paths and messages. Pure: an object (and
//! its previous version on update) in, field errors out.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::Cause;
use crate::selector::{self, LabelSelector};

/// The largest total size of an object's annotations (keys and values).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The largest total size of a ConfigMap's or Secret's data.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// How a kind's object names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (Namespace).
    Label,
    /// RFC 1035 label: starts with a letter (Service).
    Dns1035,
    /// A valid path segment: not `.` or `..`, no `/` or `%` (RBAC kinds, custom resources).
    PathSegment,
}

impl NameRule {
    /// The rule Kubernetes applies to names of `kind` in `group` (`custom`: a custom resource).
    pub fn of(group: &str, kind: &str, custom: bool) -> NameRule {
        if custom {
            return NameRule::PathSegment;
        }
        match (group, kind) {
            ("", "Namespace") => NameRule::Label,
            ("", "Service") => NameRule::Dns1035,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }

    /// Why `name` is not a valid name, if it is not.
    pub fn check(self, name: &str) -> Option<String> {
        // Control characters, and the invisible marks that reorder text (a name that reads
        // differently from what it is).
        let invisible = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if name.chars().any(|c| c.is_control() || invisible(c)) {
            return Some(
                "must not contain control characters or invisible formatting marks".into(),
            );
        }
        match self {
            NameRule::PathSegment => {
                if name == "." || name == ".." {
                    Some(format!("may not be '{name}'"))
                } else if name.contains('/') {
                    Some("may not contain '/'".into())
                } else if name.contains('%') {
                    Some("may not contain '%'".into())
                } else {
                    None
                }
            }
            NameRule::Subdomain => (!selector::is_dns1123_subdomain(name)).then(|| {
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()
            }),
            NameRule::Label => (!selector::is_dns1123_label(name)).then(|| {
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into()
            }),
            NameRule::Dns1035 => {
                let ok = selector::is_dns1123_label(name)
                    && name.starts_with(|c: char| c.is_ascii_lowercase());
                (!ok).then(|| {
                    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into()
                })
            }
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// An IANA service name (a named port): at most 15 characters, lower case letters, digits and
/// non-consecutive hyphens, at least one letter.
fn port_name_error(name: &str) -> Option<&'static str> {
    if name.len() > 15 {
        return Some("must be no more than 15 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Some("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        return Some("must not contain consecutive hyphens");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Some("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must not begin or end with a hyphen");
    }
    None
}

fn port_range(causes: &mut Vec<Cause>, path: String, value: &Value, zero_ok: bool) {
    let Some(n) = value.as_i64() else { return };
    if (zero_ok && n == 0) || (1..=65535).contains(&n) {
        return;
    }
    causes.push(Cause::invalid(path, value, "must be between 1 and 65535, inclusive"));
}

/// User and group ids of a security context (pod or container): 0 to 2^31 - 1, as Kubernetes
/// validates them.
fn security_ids(causes: &mut Vec<Cause>, context: Option<&Value>, path: &str, fields: &[&str]) {
    let Some(context) = context else { return };
    for field in fields {
        if let Some(v) = context.get(*field)
            && v.as_i64().is_some_and(|n| !(0..=i64::from(i32::MAX)).contains(&n))
        {
            causes.push(Cause::invalid(
                format!("{path}securityContext.{field}"),
                v,
                "must be between 0 and 2147483647, inclusive",
            ));
        }
    }
}

fn non_negative(causes: &mut Vec<Cause>, object: &Value, pointer: &str, path: &str) {
    if let Some(v) = object.pointer(pointer)
        && v.as_i64().is_some_and(|n| n < 0)
    {
        causes.push(Cause::invalid(path, v, "must be greater than or equal to 0"));
    }
}

/// Metadata every kind shares: labels, annotations (syntax and total size).
pub fn metadata(object: &Value, path: &str, causes: &mut Vec<Cause>) {
    let meta = object.get("metadata");
    if let Some(labels) = meta.and_then(|m| m.get("labels")).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Err(e) = selector::validate_label_key(k) {
                causes.push(Cause::invalid(format!("{path}metadata.labels"), &json!(k), &e));
            }
            if let Some(s) = v.as_str()
                && let Err(e) = selector::validate_label_value(s)
            {
                causes.push(Cause::invalid(format!("{path}metadata.labels"), v, &e));
            }
        }
    }
    if let Some(annotations) = meta.and_then(|m| m.get("annotations")).and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in annotations {
            if let Err(e) = selector::validate_label_key(k) {
                causes.push(Cause::invalid(format!("{path}metadata.annotations"), &json!(k), &e));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > MAX_ANNOTATIONS_BYTES {
            causes.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"),
                field: format!("{path}metadata.annotations"),
            });
        }
    }
}

/// A pod spec at `path` (`spec.` for a Pod, `spec.template.spec.` for workloads).
/// `restart`: the restart policies this owner allows (empty: any valid one).
pub fn pod_spec(spec: &Value, path: &str, restart: &[&str], causes: &mut Vec<Cause>) {
    let containers = array_at(spec, "/containers");
    if containers.is_empty() {
        causes.push(Cause::required(format!("{path}containers"), ""));
    }
    let mut names = BTreeSet::new();
    let groups = [
        ("containers", containers),
        ("initContainers", array_at(spec, "/initContainers")),
        ("ephemeralContainers", array_at(spec, "/ephemeralContainers")),
    ];
    for (field, list) in groups {
        for (i, c) in list.iter().enumerate() {
            let at = format!("{path}{field}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(Cause::required(format!("{at}.name"), "")),
                Some(name) => {
                    if !selector::is_dns1123_label(name) {
                        causes.push(Cause::invalid(
                            format!("{at}.name"),
                            &json!(name),
                            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                        ));
                    }
                    if !names.insert(name.to_owned()) {
                        causes.push(Cause::duplicate(format!("{at}.name"), &json!(name)));
                    }
                }
            }
            if field != "ephemeralContainers"
                && c.get("image").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty())
            {
                causes.push(Cause::required(format!("{at}.image"), ""));
            }
            security_ids(
                causes,
                c.get("securityContext"),
                &format!("{at}."),
                &["runAsUser", "runAsGroup"],
            );
            let mut port_names = BTreeSet::new();
            for (j, p) in array_at(c, "/ports").iter().enumerate() {
                let pat = format!("{at}.ports[{j}]");
                match p.get("containerPort") {
                    None => causes.push(Cause::required(format!("{pat}.containerPort"), "")),
                    Some(v) => port_range(causes, format!("{pat}.containerPort"), v, false),
                }
                if let Some(v) = p.get("hostPort") {
                    port_range(causes, format!("{pat}.hostPort"), v, true);
                }
                if let Some(name) = p.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())
                {
                    if let Some(e) = port_name_error(name) {
                        causes.push(Cause::invalid(format!("{pat}.name"), &json!(name), e));
                    }
                    if !port_names.insert(name.to_owned()) {
                        causes.push(Cause::duplicate(format!("{pat}.name"), &json!(name)));
                    }
                }
                if let Some(proto) = p.get("protocol").and_then(Value::as_str)
                    && !matches!(proto, "TCP" | "UDP" | "SCTP")
                {
                    causes.push(Cause::not_supported(
                        format!("{pat}.protocol"),
                        &json!(proto),
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
        }
    }
    let mut volumes = BTreeSet::new();
    for (i, v) in array_at(spec, "/volumes").iter().enumerate() {
        let at = format!("{path}volumes[{i}].name");
        match v.get("name").and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::required(at, "")),
            Some(name) => {
                if !volumes.insert(name.to_owned()) {
                    causes.push(Cause::duplicate(at, &json!(name)));
                }
            }
        }
    }
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str) {
        let valid: &[&str] =
            if restart.is_empty() { &["Always", "OnFailure", "Never"] } else { restart };
        if !valid.contains(&policy) {
            causes.push(Cause::not_supported(
                format!("{path}restartPolicy"),
                &json!(policy),
                valid,
            ));
        }
    } else if !restart.is_empty() && !restart.contains(&"Always") {
        // Jobs must say how their pods restart (Kubernetes defaults Always, which they refuse).
        let list: Vec<String> = restart.iter().map(|r| format!("{r:?}")).collect();
        causes.push(Cause::required(
            format!("{path}restartPolicy"),
            &format!("valid values: {}", list.join(", ")),
        ));
    }
    security_ids(
        causes,
        spec.get("securityContext"),
        path,
        &["runAsUser", "runAsGroup", "fsGroup"],
    );
    if let Some(v) = spec.get("terminationGracePeriodSeconds")
        && v.as_i64().is_some_and(|n| n < 0)
    {
        causes.push(Cause::invalid(
            format!("{path}terminationGracePeriodSeconds"),
            v,
            "must be greater than or equal to 0",
        ));
    }
}

/// A workload's selector and pod template (apps/v1 kinds, ReplicationController, Job).
fn workload(
    object: &Value,
    kind: &str,
    restart: &[&str],
    label_selector: bool,
    causes: &mut Vec<Cause>,
) {
    let Some(spec) = object.get("spec") else {
        causes.push(Cause::required("spec", ""));
        return;
    };
    non_negative(causes, object, "/spec/replicas", "spec.replicas");
    non_negative(causes, object, "/spec/minReadySeconds", "spec.minReadySeconds");
    non_negative(causes, object, "/spec/revisionHistoryLimit", "spec.revisionHistoryLimit");
    let template_labels = selector::labels_of(spec.get("template").unwrap_or(&Value::Null));
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match (selector, label_selector) {
        (None, true) => causes.push(Cause::required("spec.selector", "")),
        (Some(s), true) => match LabelSelector::from_object(s) {
            Err(e) => causes.push(Cause::invalid("spec.selector", s, &e)),
            Ok(parsed) if parsed.is_empty() => causes.push(Cause::invalid(
                "spec.selector",
                s,
                &format!("empty selector is invalid for {}", kind.to_lowercase()),
            )),
            Ok(parsed) => {
                if !parsed.matches(&template_labels) {
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &json!(template_labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        },
        // ReplicationController: a map selector, defaulted from the template's labels.
        (Some(s), false) => {
            if let Some(map) = s.as_object()
                && map.iter().any(|(k, v)| template_labels.get(k).map(String::as_str) != v.as_str())
            {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &json!(template_labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        (None, false) => {}
    }
    match spec.get("template") {
        Some(template) => {
            metadata(template, "spec.template.", causes);
            match template.get("spec") {
                Some(pod) => pod_spec(pod, "spec.template.spec.", restart, causes),
                None => causes.push(Cause::required("spec.template.spec.containers", "")),
            }
        }
        None if kind != "Job" || label_selector => {
            causes.push(Cause::required("spec.template", ""))
        }
        None => {}
    }
}

fn service(object: &Value, causes: &mut Vec<Cause>) {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let kind = str_at(spec, "/type").unwrap_or("ClusterIP");
    let types = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
    if !types.contains(&kind) {
        causes.push(Cause::not_supported("spec.type", &json!(kind), &types));
    }
    let ports = array_at(spec, "/ports");
    let headless = str_at(spec, "/clusterIP") == Some("None");
    if ports.is_empty() && kind != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports", ""));
    }
    if kind == "ExternalName" && str_at(spec, "/externalName").is_none_or(str::is_empty) {
        causes.push(Cause::required("spec.externalName", ""));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match p.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => causes.push(Cause::required(format!("{at}.name"), "")),
            None => {}
            Some(name) => {
                if !names.insert(name.to_owned()) {
                    causes.push(Cause::duplicate(format!("{at}.name"), &json!(name)));
                }
                // A service port's name is a DNS label (container ports use IANA names).
                if !selector::is_dns1123_label(name) {
                    causes.push(Cause::invalid(
                        format!("{at}.name"),
                        &json!(name),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    ));
                }
            }
        }
        match p.get("port") {
            None => causes.push(Cause::required(format!("{at}.port"), "")),
            Some(v) => port_range(causes, format!("{at}.port"), v, false),
        }
        match p.get("targetPort") {
            Some(v @ Value::Number(_)) => port_range(causes, format!("{at}.targetPort"), v, true),
            Some(Value::String(name)) if !name.is_empty() => {
                if let Some(e) = port_name_error(name) {
                    causes.push(Cause::invalid(format!("{at}.targetPort"), &json!(name), e));
                }
            }
            _ => {}
        }
        if let Some(v) = p.get("nodePort") {
            if !matches!(kind, "NodePort" | "LoadBalancer") && v.as_i64().is_some_and(|n| n != 0) {
                causes.push(Cause::forbidden(
                    format!("{at}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                port_range(causes, format!("{at}.nodePort"), v, true);
            }
        }
        if let Some(proto) = p.get("protocol").and_then(Value::as_str)
            && !matches!(proto, "TCP" | "UDP" | "SCTP")
        {
            causes.push(Cause::not_supported(
                format!("{at}.protocol"),
                &json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
}

/// ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, and their total size.
fn config_keys(object: &Value, fields: &[&str], causes: &mut Vec<Cause>) {
    let mut total = 0usize;
    let mut seen = BTreeSet::new();
    for field in fields {
        let Some(map) = object.get(*field).and_then(Value::as_object) else { continue };
        for (k, v) in map {
            let valid = !k.is_empty()
                && k.len() <= 253
                && k != "."
                && k != ".."
                && !k.starts_with("..")
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                causes.push(Cause::invalid(
                    field.to_string(),
                    &json!(k),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
            if *field != "stringData" && !seen.insert(k.clone()) {
                causes.push(Cause::invalid(
                    field.to_string(),
                    &json!(k),
                    "duplicate of key present in other field",
                ));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
    }
    if total > MAX_CONFIG_BYTES {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: must have at most {MAX_CONFIG_BYTES} bytes"),
            field: String::new(),
        });
    }
}

/// Fields that may not change once set (update only).
fn immutable(object: &Value, old: &Value, pointers: &[(&str, &str)], causes: &mut Vec<Cause>) {
    for (pointer, path) in pointers {
        let (now, before) = (object.pointer(pointer), old.pointer(pointer));
        if before.is_some() && now != before {
            causes.push(Cause::invalid(*path, now.unwrap_or(&Value::Null), "field is immutable"));
        }
    }
}

/// The per-kind rules of a built-in object's spec (`old`: the stored object, on update).
/// Status writes are not checked here.
pub fn builtin(group: &str, kind: &str, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let always: &[&str] = &["Always"];
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            workload(object, kind, always, true, &mut causes);
            if let Some(old) = old {
                immutable(object, old, &[("/spec/selector", "spec.selector")], &mut causes);
            }
            if kind == "StatefulSet"
                && let Some(old) = old
            {
                immutable(object, old, &[("/spec/serviceName", "spec.serviceName")], &mut causes);
            }
        }
        ("", "ReplicationController") => workload(object, kind, always, false, &mut causes),
        ("batch", "Job") => {
            non_negative(&mut causes, object, "/spec/parallelism", "spec.parallelism");
            non_negative(&mut causes, object, "/spec/completions", "spec.completions");
            non_negative(&mut causes, object, "/spec/backoffLimit", "spec.backoffLimit");
            if object.pointer("/spec/template").is_none() {
                causes.push(Cause::required("spec.template", ""));
            } else if let Some(pod) = object.pointer("/spec/template/spec") {
                metadata(
                    object.pointer("/spec/template").unwrap_or(&Value::Null),
                    "spec.template.",
                    &mut causes,
                );
                pod_spec(pod, "spec.template.spec.", &["OnFailure", "Never"], &mut causes);
            } else {
                causes.push(Cause::required("spec.template.spec.containers", ""));
            }
            if let Some(old) = old {
                immutable(
                    object,
                    old,
                    &[
                        ("/spec/template", "spec.template"),
                        ("/spec/completions", "spec.completions"),
                    ],
                    &mut causes,
                );
            }
        }
        ("batch", "CronJob") => {
            if str_at(object, "/spec/schedule").is_none_or(str::is_empty) {
                causes.push(Cause::required("spec.schedule", ""));
            }
            match object.pointer("/spec/jobTemplate/spec/template/spec") {
                Some(pod) => pod_spec(
                    pod,
                    "spec.jobTemplate.spec.template.spec.",
                    &["OnFailure", "Never"],
                    &mut causes,
                ),
                None => causes
                    .push(Cause::required("spec.jobTemplate.spec.template.spec.containers", "")),
            }
        }
        ("", "Pod") => {
            match object.get("spec") {
                Some(spec) => pod_spec(spec, "spec.", &[], &mut causes),
                None => causes.push(Cause::required("spec.containers", "")),
            }
            if let Some(old) = old {
                // Only images (and a few others) may change on a running pod.
                let strip = |v: &Value| {
                    let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
                    for list in ["containers", "initContainers"] {
                        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                            for c in cs {
                                if let Some(m) = c.as_object_mut() {
                                    m.remove("image");
                                }
                            }
                        }
                    }
                    if let Some(m) = spec.as_object_mut() {
                        for mutable in [
                            "activeDeadlineSeconds",
                            "tolerations",
                            "terminationGracePeriodSeconds",
                            "ephemeralContainers",
                            "schedulingGates",
                            "nodeName",
                        ] {
                            m.remove(mutable);
                        }
                    }
                    spec
                };
                if strip(object) != strip(old) {
                    causes.push(Cause::forbidden(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    ));
                }
            }
        }
        ("", "PodTemplate") => {
            if let Some(pod) = object.pointer("/template/spec") {
                pod_spec(pod, "template.spec.", &[], &mut causes);
            }
        }
        ("", "Service") => {
            service(object, &mut causes);
            if let Some(old) = old
                && str_at(old, "/spec/clusterIP").is_some_and(|ip| !ip.is_empty())
                && str_at(object, "/spec/clusterIP").is_some_and(|ip| !ip.is_empty())
            {
                immutable(object, old, &[("/spec/clusterIP", "spec.clusterIP")], &mut causes);
            }
        }
        ("", "ConfigMap") => config_keys(object, &["data", "binaryData"], &mut causes),
        ("", "Secret") => {
            config_keys(object, &["data", "stringData"], &mut causes);
            if let Some(old) = old {
                immutable(object, old, &[("/type", "type")], &mut causes);
                if old.get("immutable") == Some(&Value::Bool(true)) {
                    immutable(
                        object,
                        old,
                        &[("/data", "data"), ("/immutable", "immutable")],
                        &mut causes,
                    );
                }
            }
        }
        _ => {}
    }
    if group.is_empty()
        && kind == "ConfigMap"
        && let Some(old) = old
        && old.get("immutable") == Some(&Value::Bool(true))
    {
        immutable(
            object,
            old,
            &[("/data", "data"), ("/binaryData", "binaryData"), ("/immutable", "immutable")],
            &mut causes,
        );
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}})
    }

    fn check(group: &str, kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
        builtin(group, kind, object, old)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn workloads() {
        let ok = deployment();
        assert!(check("apps", "Deployment", &ok, None).is_empty());
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/spec/selector", Value::Null, "spec.selector: Required value"),
            (
                "/spec/selector",
                json!({}),
                "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
            ),
            (
                "/spec/selector/matchLabels/app",
                json!("api"),
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
            ),
            (
                "/spec/replicas",
                json!(-1),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "/spec/template/spec/containers",
                json!([]),
                "spec.template.spec.containers: Required value",
            ),
            (
                "/spec/template/spec/containers/0/image",
                json!(""),
                "spec.template.spec.containers[0].image: Required value",
            ),
            (
                "/spec/template/spec/securityContext",
                json!({"runAsUser": -1}),
                "spec.template.spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            ),
            (
                "/spec/template/spec/containers/0/securityContext",
                json!({"runAsGroup": 2147483648_i64}),
                "spec.template.spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: must be between 0 and 2147483647, inclusive",
            ),
            (
                "/spec/template/spec/containers/0/ports/0/containerPort",
                json!(70000),
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "/spec/template/spec/restartPolicy",
                json!("Never"),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ),
            (
                "/spec/template/spec/containers/0/name",
                json!("Nginx"),
                "spec.template.spec.containers[0].name: Invalid value: \"Nginx\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut d = ok.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match d.pointer_mut(parent).unwrap_or_else(|| panic!("{pointer}")) {
                Value::Object(m) => {
                    m.insert(key.to_owned(), value);
                }
                Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
                _ => panic!("{pointer}"),
            }
            assert_eq!(check("apps", "Deployment", &d, None), [want], "{pointer}");
        }
        let mut two = ok.clone();
        two["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]);
        assert_eq!(
            check("apps", "Deployment", &two, None),
            ["spec.template.spec.containers[1].name: Duplicate value: \"a\""]
        );
        // The selector is immutable.
        let mut changed = ok.clone();
        changed["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
        changed["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        assert_eq!(check("apps", "Deployment", &changed, Some(&ok)).len(), 1);
        // Jobs need a restart policy of OnFailure or Never.
        let job =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(
            check("batch", "Job", &job, None),
            [
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
    }

    #[test]
    fn services_and_config() {
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"name": "b", "port": 0}]}});
        assert_eq!(
            check("", "Service", &svc, None),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"
            ]
        );
        assert!(check("", "Service", &json!({"spec": {"clusterIP": "None"}}), None).is_empty());
        let cm = json!({"data": {"ok.key": "v", "bad key": "v"}});
        assert_eq!(check("", "ConfigMap", &cm, None).len(), 1);
        let old = json!({"immutable": true, "data": {"a": "1"}});
        assert_eq!(
            check("", "ConfigMap", &json!({"immutable": true, "data": {"a": "2"}}), Some(&old)),
            ["data: Invalid value: {\"a\":\"2\"}: field is immutable"]
        );
    }

    #[test]
    fn names_per_kind() {
        assert!(NameRule::of("", "ConfigMap", false).check("a b:c").is_some());
        assert_eq!(
            NameRule::of("rbac.authorization.k8s.io", "ClusterRole", false)
                .check("system:controller:x"),
            None
        );
        assert!(NameRule::of("", "Service", false).check("1abc").is_some());
        assert!(NameRule::of("", "Namespace", false).check("a.b").is_some());
        assert!(NameRule::of("x.io", "Widget", true).check("a:b").is_none());
        assert!(NameRule::of("x.io", "Widget", true).check("a\u{0}b").is_some());
        assert!(NameRule::of("x.io", "Widget", true).check("evil\u{202E}gpj.exe").is_some());
        assert!(NameRule::of("x.io", "Widget", true).check("..").is_some());
    }

    #[test]
    fn annotations_are_bounded() {
        let mut big =
            json!({"metadata": {"annotations": {"a": "x".repeat(MAX_ANNOTATIONS_BYTES)}}});
        let mut causes = Vec::new();
        metadata(&big, "", &mut causes);
        assert_eq!(causes[0].field, "metadata.annotations");
        big["metadata"]["annotations"]["a"] = json!("x");
        causes.clear();
        metadata(&big, "", &mut causes);
        assert!(causes.is_empty());
    }
}

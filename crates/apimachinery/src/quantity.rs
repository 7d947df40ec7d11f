//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1G`, `2e3`) as milli-units, and
//! resource lists (`{"cpu": "1", "memory": "1Gi"}`) as maps of milli-units.

use std::collections::BTreeMap;

use serde_json::Value;

/// Parses a quantity into thousandths of its unit (`"100m"` → 100, `"2"` → 2000,
/// `"1Ki"` → 1_024_000). Saturates instead of overflowing.
pub fn parse_milli(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let (mantissa, exp10): (&str, i32) =
        if let Some(e) = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E')) {
            (number, e.parse().ok()?)
        } else {
            (number, 0)
        };
    let (multiplier, exp): (i128, i32) = match suffix {
        _ if exp10 != 0 || suffix.starts_with('e') || suffix.starts_with('E') => (1, exp10),
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        _ => return None,
    };
    let negative = mantissa.starts_with('-');
    let digits = mantissa.trim_start_matches(['-', '+']);
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = (int.frac) * multiplier * 10^exp * 1000
    let mut scaled: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        scaled = scaled.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    let mut power = exp.saturating_add(3).saturating_sub(frac_part.len() as i32);
    scaled = scaled.saturating_mul(multiplier);
    // Beyond 10^±40 the result saturates (or rounds up to 1): no need to loop there, and a
    // huge exponent must not cost a loop iteration per power.
    if power > 40 {
        scaled = if scaled == 0 { 0 } else { i128::MAX };
        power = 0;
    } else if power < -40 {
        scaled = i128::from(scaled != 0);
        power = 0;
    }
    while power > 0 {
        scaled = scaled.saturating_mul(10);
        power -= 1;
    }
    while power < 0 {
        // Round up, as Kubernetes does when it cannot represent a fraction.
        scaled = scaled / 10 + i128::from(scaled % 10 != 0);
        power += 1;
    }
    Some(if negative { -scaled } else { scaled })
}

/// Formats milli-units back into a quantity (`1500` → `"1500m"`, `2000` → `"2"`).
pub fn format_milli(milli: i128) -> String {
    if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") }
}

/// Formats milli-units as Kubernetes prints a quantity: with a binary suffix (`Ki`, `Mi`, ...)
/// when `binary` and the value is a whole multiple of 1024, otherwise with the largest
/// decimal suffix (`k`, `M`, ...) that keeps the number whole, or in milli-units (`1500m`).
pub fn format_canonical(milli: i128, binary: bool) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let value = milli / 1000;
    if value == 0 {
        return "0".to_owned();
    }
    let (base, suffixes): (i128, &[&str]) = if binary {
        (1024, &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])
    } else {
        (1000, &["k", "M", "G", "T", "P", "E"])
    };
    let mut mantissa = value;
    let mut used = "";
    for suffix in suffixes {
        if mantissa % base != 0 {
            break;
        }
        mantissa /= base;
        used = suffix;
    }
    if binary && used.is_empty() {
        return format_canonical(milli, false);
    }
    format!("{mantissa}{used}")
}

/// A quantity as Kubernetes serializes it once parsed (`"0.05"` → `"50m"`, `"1024Mi"` →
/// `"1Gi"`, `"1000m"` → `"1"`): binary suffixes stay binary when the value allows, anything
/// else prints decimal. `None` when it does not parse.
pub fn canonicalize(s: &str) -> Option<String> {
    let milli = parse_milli(s)?;
    Some(format_canonical(milli, s.trim_end().ends_with('i')))
}

/// Whether a resource's quantities print with binary suffixes (memory and storage).
pub fn binary_resource(name: &str) -> bool {
    matches!(name, "memory" | "ephemeral-storage" | "storage") || name.starts_with("hugepages-")
}

/// A resource list as milli-units per resource name.
pub type Resources = BTreeMap<String, i128>;

pub fn parse_list(value: Option<&Value>) -> Resources {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let q = match v {
                        Value::String(s) => parse_milli(s)?,
                        Value::Number(n) => (n.as_f64()? * 1000.0).round() as i128,
                        _ => return None,
                    };
                    Some((k.clone(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn add(into: &mut Resources, other: &Resources) {
    for (k, v) in other {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Element-wise maximum.
pub fn max(into: &mut Resources, other: &Resources) {
    for (k, v) in other {
        let e = into.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
}

/// What one pod asks for: the sum over its containers (limits standing in for missing
/// requests), or its largest init container if that is larger, plus one `pods`.
pub fn pod_requests(pod: &Value) -> Resources {
    let containers = |field: &str| {
        pod.pointer(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("resources"))
    };
    requests_of(containers("/spec/containers"), containers("/spec/initContainers"))
}

/// A pod's requests from its containers' and init containers' `resources` (requests, or
/// limits where a request is not given), plus one pod.
pub fn requests_of<'a>(
    containers: impl Iterator<Item = &'a Value>,
    init_containers: impl Iterator<Item = &'a Value>,
) -> Resources {
    let per_container = |resources: &Value| {
        let mut r = parse_list(resources.get("limits"));
        for (k, v) in parse_list(resources.get("requests")) {
            r.insert(k, v);
        }
        r
    };
    let mut total = Resources::new();
    for c in containers {
        add(&mut total, &per_container(c));
    }
    for c in init_containers {
        max(&mut total, &per_container(c));
    }
    total.insert("pods".into(), 1000);
    total
}

pub fn to_json(resources: &Resources) -> Value {
    Value::Object(
        resources.iter().map(|(k, v)| (k.clone(), Value::String(format_milli(*v)))).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (given, canonical) in [
            ("0.05", "50m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("100Mi", "100Mi"),
        ] {
            assert_eq!(canonicalize(given).as_deref(), Some(canonical), "{given}");
        }
        assert_eq!(canonicalize("lots"), None);
    }

    #[test]
    fn quantities() {
        let cases = [
            ("1000000n", Some(1)),
            ("1500000n", Some(2)),
            ("250u", Some(1)),
            ("100m", Some(100)),
            ("1", Some(1000)),
            ("0.5", Some(500)),
            ("1.5", Some(1500)),
            ("2k", Some(2_000_000)),
            ("1Ki", Some(1_024_000)),
            ("128Mi", Some(128 * 1024 * 1024 * 1000)),
            ("1G", Some(1_000_000_000_000)),
            ("1e3", Some(1_000_000)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("0.0001", Some(1)),
            ("-1", Some(-1000)),
            ("", None),
            ("abc", None),
            ("1Xi", None),
            (".", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_milli(input), want, "{input}");
        }
        assert_eq!(format_milli(1500), "1500m");
        assert_eq!(format_milli(2000), "2");
    }

    #[test]
    fn pod_requests_sum_containers_and_respect_init_containers() {
        let pod = serde_json::json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "64Mi"}}},
                {"resources": {"requests": {"cpu": "200m", "memory": "32Mi"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}});
        let r = pod_requests(&pod);
        assert_eq!(r["cpu"], 2000, "the init container is larger");
        assert_eq!(
            r["memory"],
            (64 + 32) * 1024 * 1024 * 1000,
            "limits stand in for missing requests"
        );
        assert_eq!(r["pods"], 1000);
    }
}

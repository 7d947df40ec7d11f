//! karmada-search's resource versions and continue tokens span clusters, as upstream's: a
//! resource version is the base64url (unpadded) JSON map of cluster → that cluster's version
//! (keys sorted, so that equal versions are equal strings); `"0"` stays `"0"` (any version)
//! and `""` means none. A continue token carries the version, the cluster the next page starts
//! in and that cluster's own continue token. Anything that does not decode is ignored, as
//! upstream ignores it.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A resource version across clusters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultiVersion {
    /// `"0"`: any version will do, in every cluster.
    zero: bool,
    versions: BTreeMap<String, String>,
}

impl MultiVersion {
    pub fn parse(text: &str) -> MultiVersion {
        match text {
            "" => MultiVersion::default(),
            "0" => MultiVersion { zero: true, versions: BTreeMap::new() },
            _ => MultiVersion {
                zero: false,
                versions: URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or_default(),
            },
        }
    }

    /// One cluster's version (`"0"` for all when zero; `""` when unknown).
    pub fn get(&self, cluster: &str) -> &str {
        if self.zero { "0" } else { self.versions.get(cluster).map_or("", String::as_str) }
    }

    pub fn set(&mut self, cluster: &str, version: &str) {
        self.versions.insert(cluster.to_owned(), version.to_owned());
        if version != "0" {
            self.zero = false;
        }
    }

    pub fn encode(&self) -> String {
        if self.zero {
            return "0".into();
        }
        if self.versions.is_empty() {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.versions).unwrap_or_default())
    }

    /// `version` as `cluster` knows it: the cluster's part of a multi-cluster version, or
    /// `None` when it is not one (a plain version is left as it is).
    pub fn of_cluster(version: &str, cluster: &str) -> Option<String> {
        if version.is_empty() || version == "0" {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(version).ok()?;
        let versions: BTreeMap<String, String> = serde_json::from_slice(&bytes).ok()?;
        Some(versions.get(cluster).cloned().unwrap_or_default())
    }
}

/// Where a chunked list across clusters goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiContinue {
    #[serde(default)]
    pub rv: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_: String,
}

impl MultiContinue {
    pub fn parse(text: &str) -> MultiContinue {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The token (empty when there is nothing more to list).
    pub fn encode(&self) -> String {
        if self.cluster.is_empty() {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_match_upstreams_encoding() {
        let mut v = MultiVersion::parse("");
        assert_eq!(v.encode(), "");
        v.set("member2", "20");
        v.set("member1", "10");
        // {"member1":"10","member2":"20"}, keys sorted, no spaces.
        let encoded = v.encode();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&encoded).unwrap(),
            br#"{"member1":"10","member2":"20"}"#
        );
        let back = MultiVersion::parse(&encoded);
        assert_eq!(
            (back.get("member1"), back.get("member2"), back.get("member3")),
            ("10", "20", "")
        );
        assert_eq!(MultiVersion::of_cluster(&encoded, "member2").as_deref(), Some("20"));
        assert_eq!(MultiVersion::of_cluster("1234", "member2"), None, "a plain version");
        let zero = MultiVersion::parse("0");
        assert_eq!((zero.get("any"), zero.encode().as_str()), ("0", "0"));
        assert_eq!(MultiVersion::parse("%%%not base64"), MultiVersion::default());
    }

    #[test]
    fn continue_tokens_round_trip() {
        let c =
            MultiContinue { rv: "abc".into(), cluster: "member2".into(), continue_: "k".into() };
        assert_eq!(MultiContinue::parse(&c.encode()), c);
        assert_eq!(MultiContinue { rv: "abc".into(), ..Default::default() }.encode(), "");
        assert_eq!(MultiContinue::parse("garbage!"), MultiContinue::default());
    }
}

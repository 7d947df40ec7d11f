//! Every Karmada kind the control plane serves, as plain data (the API server turns these into
//! its resource definitions). Printer columns follow upstream's CRDs.

/// A printer column: (name, type, JSONPath, priority, value printed when the path is empty).
pub type Column = (&'static str, &'static str, &'static str, i64, Option<&'static str>);

use crate::schema;

pub struct Kind {
    pub group: &'static str,
    /// Served versions; the first is the storage version.
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub status: bool,
    pub columns: &'static [Column],
    /// The kind's structural OpenAPI v3 schema, generated from its type.
    pub schema: fn() -> serde_json::Value,
    /// Served versions of another shape, converted to and from the storage version.
    pub older: &'static [OlderVersion],
}

/// A served version whose objects have another shape than the storage version's: its schema,
/// and the conversions both ways (as upstream's conversion webhook).
pub struct OlderVersion {
    pub version: &'static str,
    pub schema: fn() -> serde_json::Value,
    pub to_storage: fn(serde_json::Value) -> serde_json::Value,
    pub from_storage: fn(serde_json::Value) -> serde_json::Value,
}

impl Kind {
    /// The conversions of a served version of another shape (`None`: the storage shape).
    pub fn older(&self, version: &str) -> Option<&'static OlderVersion> {
        self.older.iter().find(|o| o.version == version)
    }

    /// The schema of a served version.
    pub fn schema_of(&self, version: &str) -> serde_json::Value {
        self.older(version).map_or_else(|| (self.schema)(), |o| (o.schema)())
    }
}

/// ResourceBinding and ClusterResourceBinding v1alpha1.
const BINDING_V1ALPHA1: &[OlderVersion] = &[OlderVersion {
    version: "v1alpha1",
    schema: crate::work_v1alpha1::schema,
    to_storage: crate::work_v1alpha1::to_v1alpha2,
    from_storage: crate::work_v1alpha1::from_v1alpha2,
}];

pub const CATEGORY: &str = "karmada-io";

const AGE: Column = ("Age", "date", ".metadata.creationTimestamp", 0, None);
const POLICY_COLUMNS: &[Column] = &[
    ("Conflict-Resolution", "string", ".spec.conflictResolution", 0, None),
    ("Priority", "integer", ".spec.priority", 0, None),
    AGE,
];
const BINDING_COLUMNS: &[Column] = &[
    ("Scheduled", "string", ".status.conditions[?(@.type==\"Scheduled\")].status", 0, None),
    ("FullyApplied", "string", ".status.conditions[?(@.type==\"FullyApplied\")].status", 0, None),
    AGE,
];
const HPA_COLUMNS: &[Column] = &[
    ("Reference-Kind", "string", ".spec.scaleTargetRef.kind", 0, None),
    ("Reference-Name", "string", ".spec.scaleTargetRef.name", 0, None),
    ("MinPods", "integer", ".spec.minReplicas", 0, None),
    ("MaxPods", "integer", ".spec.maxReplicas", 0, None),
    ("Replicas", "integer", ".status.currentReplicas", 0, None),
    AGE,
];

const fn k(
    group: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    columns: &'static [Column],
    schema: fn() -> serde_json::Value,
) -> Kind {
    Kind {
        group,
        versions,
        kind,
        plural,
        namespaced,
        short_names,
        status,
        columns,
        schema,
        older: &[],
    }
}

pub const KINDS: &[Kind] = &[
    k(
        "cluster.karmada.io",
        &["v1alpha1"],
        "Cluster",
        "clusters",
        false,
        &[],
        true,
        &[
            ("Version", "string", ".status.kubernetesVersion", 0, None),
            ("Mode", "string", ".spec.syncMode", 0, None),
            (
                "Ready",
                "string",
                ".status.conditions[?(@.type==\"Ready\")].status",
                0,
                Some("Unknown"),
            ),
            AGE,
            ("Zones", "string", ".spec.zones", 1, None),
            ("Region", "string", ".spec.region", 1, None),
            ("Provider", "string", ".spec.provider", 1, None),
            ("API-Endpoint", "string", ".spec.apiEndpoint", 1, None),
            ("Proxy-URL", "string", ".spec.proxyURL", 1, None),
        ],
        schema::of::<crate::cluster::Cluster>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "PropagationPolicy",
        "propagationpolicies",
        true,
        &["pp"],
        false,
        POLICY_COLUMNS,
        schema::of::<crate::policy::PropagationPolicy>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "ClusterPropagationPolicy",
        "clusterpropagationpolicies",
        false,
        &["cpp"],
        false,
        POLICY_COLUMNS,
        schema::of::<crate::policy::ClusterPropagationPolicy>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "OverridePolicy",
        "overridepolicies",
        true,
        &["op"],
        false,
        &[AGE],
        schema::of::<crate::policy::OverridePolicy>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "ClusterOverridePolicy",
        "clusteroverridepolicies",
        false,
        &["cop"],
        false,
        &[AGE],
        schema::of::<crate::policy::ClusterOverridePolicy>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "FederatedResourceQuota",
        "federatedresourcequotas",
        true,
        &["frq"],
        true,
        &[AGE],
        schema::of::<crate::policy::FederatedResourceQuota>,
    ),
    k(
        "policy.karmada.io",
        &["v1alpha1"],
        "ClusterTaintPolicy",
        "clustertaintpolicies",
        false,
        &[],
        false,
        &[AGE],
        schema::of::<crate::policy::ClusterTaintPolicy>,
    ),
    k(
        "work.karmada.io",
        &["v1alpha1"],
        "Work",
        "works",
        true,
        &["wk"],
        true,
        &[
            ("Workload-Kind", "string", ".spec.workload.manifests[*].kind", 0, None),
            ("Applied", "string", ".status.conditions[?(@.type==\"Applied\")].status", 0, None),
            AGE,
        ],
        schema::of::<crate::work::Work>,
    ),
    Kind {
        older: BINDING_V1ALPHA1,
        ..k(
            "work.karmada.io",
            &["v1alpha2", "v1alpha1"],
            "ResourceBinding",
            "resourcebindings",
            true,
            &["rb"],
            true,
            BINDING_COLUMNS,
            schema::of::<crate::work::ResourceBinding>,
        )
    },
    Kind {
        older: BINDING_V1ALPHA1,
        ..k(
            "work.karmada.io",
            &["v1alpha2", "v1alpha1"],
            "ClusterResourceBinding",
            "clusterresourcebindings",
            false,
            &["crb"],
            true,
            BINDING_COLUMNS,
            schema::of::<crate::work::ClusterResourceBinding>,
        )
    },
    k(
        "config.karmada.io",
        &["v1alpha1"],
        "ResourceInterpreterCustomization",
        "resourceinterpretercustomizations",
        false,
        &["ric"],
        false,
        &[
            ("Target-API-Version", "string", ".spec.target.apiVersion", 0, None),
            ("Target-Kind", "string", ".spec.target.kind", 0, None),
            AGE,
        ],
        schema::of::<crate::config::ResourceInterpreterCustomization>,
    ),
    k(
        "config.karmada.io",
        &["v1alpha1"],
        "ResourceInterpreterWebhookConfiguration",
        "resourceinterpreterwebhookconfigurations",
        false,
        &[],
        false,
        &[AGE],
        schema::of::<crate::config::ResourceInterpreterWebhookConfiguration>,
    ),
    k(
        "autoscaling.karmada.io",
        &["v1alpha1"],
        "FederatedHPA",
        "federatedhpas",
        true,
        &["fhpa"],
        true,
        HPA_COLUMNS,
        schema::of::<crate::autoscaling::FederatedHPA>,
    ),
    k(
        "autoscaling.karmada.io",
        &["v1alpha1"],
        "CronFederatedHPA",
        "cronfederatedhpas",
        true,
        &["cronfhpa"],
        true,
        &[
            ("Reference-Kind", "string", ".spec.scaleTargetRef.kind", 0, None),
            ("Reference-Name", "string", ".spec.scaleTargetRef.name", 0, None),
            AGE,
        ],
        schema::of::<crate::autoscaling::CronFederatedHPA>,
    ),
    k(
        "multicluster.x-k8s.io",
        &["v1alpha1"],
        "ServiceExport",
        "serviceexports",
        true,
        &["svcex"],
        true,
        &[AGE],
        schema::of::<crate::mcs::ServiceExport>,
    ),
    k(
        "multicluster.x-k8s.io",
        &["v1alpha1"],
        "ServiceImport",
        "serviceimports",
        true,
        &["svcim"],
        true,
        &[("Type", "string", ".spec.type", 0, None), ("IP", "string", ".spec.ips", 0, None), AGE],
        schema::of::<crate::mcs::ServiceImport>,
    ),
    k(
        "networking.karmada.io",
        &["v1alpha1"],
        "MultiClusterService",
        "multiclusterservices",
        true,
        &["mcs"],
        true,
        &[AGE],
        schema::of::<crate::networking::MultiClusterService>,
    ),
    k(
        "networking.karmada.io",
        &["v1alpha1"],
        "MultiClusterIngress",
        "multiclusteringresses",
        true,
        &["mci"],
        true,
        &[AGE],
        schema::of::<crate::networking::MultiClusterIngress>,
    ),
    k(
        "remedy.karmada.io",
        &["v1alpha1"],
        "Remedy",
        "remedies",
        false,
        &[],
        true,
        &[AGE],
        schema::of::<crate::remedy::Remedy>,
    ),
    k(
        "apps.karmada.io",
        &["v1alpha1"],
        "WorkloadRebalancer",
        "workloadrebalancers",
        false,
        &[],
        true,
        &[AGE],
        schema::of::<crate::apps::WorkloadRebalancer>,
    ),
    k(
        "search.karmada.io",
        &["v1alpha1"],
        "ResourceRegistry",
        "resourceregistries",
        false,
        &[],
        true,
        &[AGE],
        schema::of::<crate::apps::ResourceRegistry>,
    ),
];

/// Karmada's own API groups (objects in them are never propagated): the `karmada.io` groups of
/// [`KINDS`], as upstream skips them. Other groups under
/// `karmada.io` (a user's CRD `example.karmada.io`) are ordinary templates, and so are the
/// MCS API's (`multicluster.x-k8s.io`: ServiceExports and ServiceImports propagate).
pub fn is_karmada_group(group: &str) -> bool {
    group.ends_with(".karmada.io") && KINDS.iter().any(|k| k.group == group)
}

/// The row of `kind` in [`KINDS`]. Evaluated at compile time where it is used in a constant
/// (every `kube_core::Resource` impl does): a kind missing from the table is a build error.
pub const fn kind_def(kind: &str) -> &'static Kind {
    let mut i = 0;
    while i < KINDS.len() {
        if same(KINDS[i].kind.as_bytes(), kind.as_bytes()) {
            return &KINDS[i];
        }
        i += 1;
    }
    panic!("a kind missing from karmada_api::kinds::KINDS")
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

//! The resource registry: every kind the server serves (built-ins from one table, Karmada's
//! kinds and CRDs added at run time), and the discovery documents derived from it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde_json::Value;

use crate::alias::StoredAs;

/// How `/scale` maps onto an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleDef {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    /// A path to the selector: a `LabelSelector` object for built-ins, a string for CRDs.
    pub label_selector_path: Option<String>,
}

/// A CRD printer column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
    /// Printed when the path selects nothing (e.g. `Unknown` for a missing condition).
    pub default_value: Option<String>,
}

/// How objects of a resource print as `kubectl get` rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Printer {
    /// A built-in printer, keyed by kind (see `table`).
    Builtin,
    /// CRD-style columns (Name is always first; no Age unless listed).
    Columns(Vec<Column>),
}

/// Everything the server needs to know to serve one resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// A `/status` subresource: main-resource writes keep the old status, status writes keep
    /// everything else.
    pub status: bool,
    pub scale: Option<ScaleDef>,
    /// Maintain `metadata.generation` (bumped on changes outside metadata and status).
    pub generation: bool,
    pub printer: Printer,
    /// Strategic merge patch is accepted (built-in kinds only; CRs get 415).
    pub strategic: bool,
    /// For custom resources: the structural schema of this version (validation and pruning).
    pub schema: Option<Arc<Value>>,
    /// Served from a CRD (not a built-in).
    pub custom: bool,
    /// The version objects are stored in (other versions are converted on the way in and out).
    pub storage_version: String,
    /// Objects have a Kubernetes protobuf encoding (built-in kinds).
    pub protobuf: bool,
    /// The kind's OpenAPI schema (built-in kinds: from k8s-openapi, with Kubernetes'
    /// descriptions), added to a generator as a reference to its definition.
    pub openapi: Option<OpenApiFn>,
    /// Objects live in another kind's storage, in its form (`events.k8s.io` Events are core
    /// Events), converted on the way in and out.
    pub stored_as: Option<StoredAs>,
    /// This version's objects have another shape than the storage version's: converted on
    /// the way in and out.
    pub conversion: Option<Conversion>,
    /// The verbs the kind answers, as discovery lists them.
    pub verbs: Verbs,
}

/// The verbs a kind answers, as discovery lists them: clients (the detector, informers,
/// `kubectl api-resources`) decide from them what they may list and watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbs {
    /// Stored objects: every verb.
    #[default]
    All,
    /// Answered, never stored (the reviews): only `create`.
    CreateOnly,
    /// Computed when read (metrics): `get` and `list`.
    ReadOnly,
}

impl Verbs {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Verbs::All => {
                &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
            }
            Verbs::CreateOnly => &["create"],
            Verbs::ReadOnly => &["get", "list"],
        }
    }
}

/// Conversions between a served version and the storage version.
#[derive(Clone, Copy, Debug)]
pub struct Conversion {
    pub to_storage: fn(Value) -> Value,
    pub from_storage: fn(Value) -> Value,
}

/// Adds a kind's schema (and the schemas it uses) to a generator, returning a reference.
pub type OpenApiFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn openapi_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

impl ResourceDef {
    /// A kind served by another server (a member cluster's), known by its names only: listed
    /// with the default columns, no schema.
    pub fn external(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> Self {
        ResourceDef {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            status: false,
            scale: None,
            generation: false,
            printer: Printer::Columns(crate::table::default_crd_columns()),
            strategic: false,
            schema: None,
            custom: true,
            storage_version: version.to_owned(),
            protobuf: false,
            openapi: None,
            stored_as: None,
            conversion: None,
            verbs: Verbs::All,
        }
    }

    /// A `metrics.k8s.io/v1beta1` kind (PodMetrics, NodeMetrics), served computed on read.
    pub fn metrics(kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceDef {
            printer: Printer::Columns(Vec::new()),
            custom: false,
            verbs: Verbs::ReadOnly,
            ..ResourceDef::external("metrics.k8s.io", "v1beta1", kind, plural, namespaced)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether objects are served exactly as stored (no version or kind conversion), so stored
    /// bytes can be sent as they are.
    pub fn served_as_stored(&self) -> bool {
        self.version == self.storage_version && self.stored_as.is_none()
    }

    /// The store prefix holding every object of this resource (all versions share it).
    pub fn prefix(&self) -> String {
        if let Some(alias) = self.stored_as {
            return alias.prefix().to_owned();
        }
        let group = if self.group.is_empty() { "core" } else { &self.group };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store prefix of a collection: one namespace, or all of them.
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.prefix()),
            _ => format!("{}{name}", self.prefix()),
        }
    }

    /// `plural.group` (as in error messages).
    pub fn group_resource(&self) -> String {
        apimachinery::status::qualified(&self.plural, &self.group)
    }
}

struct Builtin {
    openapi: Option<OpenApiFn>,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
    stored_as: Option<StoredAs>,
    verbs: Verbs,
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Builtin {
    Builtin {
        openapi: None,
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        all: false,
        status: false,
        scale: false,
        generation: false,
        stored_as: None,
        verbs: Verbs::All,
    }
}

impl Builtin {
    /// A review: answered, never stored.
    const fn review(mut self) -> Self {
        self.verbs = Verbs::CreateOnly;
        self
    }

    const fn schema(mut self, openapi: OpenApiFn) -> Self {
        self.openapi = Some(openapi);
        self
    }
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn workload(mut self) -> Self {
        self.status = true;
        self.generation = true;
        self
    }
    const fn stored_as(mut self, alias: StoredAs) -> Self {
        self.stored_as = Some(alias);
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
}

/// Built-in kinds, in discovery order. Adding a kind is one line here (plus, optionally, a
/// printer in `table`).
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false, &["ns"]).status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::Namespace>),
    b("", "v1", "ConfigMap", "configmaps", true, &["cm"])
        .schema(openapi_of::<k8s_openapi::api::core::v1::ConfigMap>),
    b("", "v1", "Secret", "secrets", true, &[])
        .schema(openapi_of::<k8s_openapi::api::core::v1::Secret>),
    b("", "v1", "Service", "services", true, &["svc"]).all().status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::Service>),
    b("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"])
        .schema(openapi_of::<k8s_openapi::api::core::v1::ServiceAccount>),
    b("", "v1", "Endpoints", "endpoints", true, &["ep"])
        .schema(openapi_of::<k8s_openapi::api::core::v1::Endpoints>),
    b("", "v1", "Event", "events", true, &["ev"])
        .schema(openapi_of::<k8s_openapi::api::core::v1::Event>),
    b("", "v1", "Pod", "pods", true, &["po"]).all().status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::Pod>),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]).status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::PersistentVolumeClaim>),
    b("", "v1", "PersistentVolume", "persistentvolumes", false, &["pv"]).status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::PersistentVolume>),
    b("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"]).status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::ResourceQuota>),
    b("", "v1", "LimitRange", "limitranges", true, &["limits"])
        .schema(openapi_of::<k8s_openapi::api::core::v1::LimitRange>),
    b("", "v1", "Node", "nodes", false, &["no"]).status()
        .schema(openapi_of::<k8s_openapi::api::core::v1::Node>),
    b("", "v1", "ReplicationController", "replicationcontrollers", true, &["rc"])
        .all()
        .workload()
        .scale()
        .schema(openapi_of::<k8s_openapi::api::core::v1::ReplicationController>),
    b("", "v1", "PodTemplate", "podtemplates", true, &[])
        .schema(openapi_of::<k8s_openapi::api::core::v1::PodTemplate>),
    b("apps", "v1", "Deployment", "deployments", true, &["deploy"]).all().workload().scale()
        .schema(openapi_of::<k8s_openapi::api::apps::v1::Deployment>),
    b("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"]).all().workload().scale()
        .schema(openapi_of::<k8s_openapi::api::apps::v1::StatefulSet>),
    b("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"]).all().workload()
        .schema(openapi_of::<k8s_openapi::api::apps::v1::DaemonSet>),
    b("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"]).all().workload().scale()
        .schema(openapi_of::<k8s_openapi::api::apps::v1::ReplicaSet>),
    b("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[])
        .schema(openapi_of::<k8s_openapi::api::apps::v1::ControllerRevision>),
    b("batch", "v1", "Job", "jobs", true, &[]).all().workload()
        .schema(openapi_of::<k8s_openapi::api::batch::v1::Job>),
    b("batch", "v1", "CronJob", "cronjobs", true, &["cj"]).all().workload()
        .schema(openapi_of::<k8s_openapi::api::batch::v1::CronJob>),
    b("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"])
        .all()
        .status()
        .schema(openapi_of::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>),
    b("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"]).status()
        .schema(openapi_of::<k8s_openapi::api::networking::v1::Ingress>),
    b("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, &[])
        .schema(openapi_of::<k8s_openapi::api::networking::v1::IngressClass>),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"])
        .schema(openapi_of::<k8s_openapi::api::networking::v1::NetworkPolicy>),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[])
        .schema(openapi_of::<k8s_openapi::api::rbac::v1::Role>),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[])
        .schema(openapi_of::<k8s_openapi::api::rbac::v1::RoleBinding>),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[])
        .schema(openapi_of::<k8s_openapi::api::rbac::v1::ClusterRole>),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[])
        .schema(openapi_of::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>),
    b("coordination.k8s.io", "v1", "Lease", "leases", true, &[])
        .schema(openapi_of::<k8s_openapi::api::coordination::v1::Lease>),
    // Reviews are answered, never stored (see `review`); listed so clients can map the kinds.
    b("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false, &[])
        .review()
        .schema(openapi_of::<k8s_openapi::api::authentication::v1::TokenReview>),
    b("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", false, &[])
        .review()
        .schema(openapi_of::<k8s_openapi::api::authentication::v1::SelfSubjectReview>),
    b("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false, &[])
        .review()
        .schema(openapi_of::<k8s_openapi::api::authorization::v1::SubjectAccessReview>),
    b(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        &[],
    )
        .review()
        .schema(openapi_of::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>),
    b(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        &[],
    )
        .review()
        .schema(openapi_of::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>),
    b(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
        &[],
    )
        .review()
        .schema(openapi_of::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>),
    b(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
        &["csr"],
    )
    .status()
        .schema(openapi_of::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"]).status()
        .schema(openapi_of::<k8s_openapi::api::policy::v1::PodDisruptionBudget>),
    b("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[])
        .schema(openapi_of::<k8s_openapi::api::discovery::v1::EndpointSlice>),
    b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"])
        .schema(openapi_of::<k8s_openapi::api::storage::v1::StorageClass>),
    b("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &["pc"])
        .schema(openapi_of::<k8s_openapi::api::scheduling::v1::PriorityClass>),
    b("events.k8s.io", "v1", "Event", "events", true, &["ev"]).stored_as(StoredAs::CoreEvent)
        .schema(openapi_of::<k8s_openapi::api::events::v1::Event>),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
    )
    .status()
        .schema(openapi_of::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>),
];

fn builtin_def(b: &Builtin) -> ResourceDef {
    let scale = b.scale.then(|| ScaleDef {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: Some(".spec.selector".into()),
    });
    ResourceDef {
        group: b.group.into(),
        version: b.version.into(),
        kind: b.kind.into(),
        plural: b.plural.into(),
        singular: b.kind.to_lowercase(),
        namespaced: b.namespaced,
        short_names: b.short.iter().map(|s| (*s).to_owned()).collect(),
        categories: if b.all { vec!["all".into()] } else { vec![] },
        status: b.status,
        scale,
        generation: b.generation,
        printer: Printer::Builtin,
        strategic: true,
        schema: None,
        custom: false,
        storage_version: b.version.into(),
        openapi: b.openapi,
        stored_as: b.stored_as,
        conversion: None,
        verbs: b.verbs,
        protobuf: kube_protobuf::supports(
            &if b.group.is_empty() {
                b.version.to_owned()
            } else {
                format!("{}/{}", b.group, b.version)
            },
            b.kind,
        ),
    }
}

/// Who registered a set of resources (so a CRD's kinds can be replaced or removed as a unit).
pub type Owner = String;

#[derive(Default)]
struct State {
    /// (group, version, plural) → definition, plus its owner.
    resources: BTreeMap<(String, String, String), (Arc<ResourceDef>, Owner)>,
    /// Group order for discovery: built-ins first, then in registration order.
    group_order: Vec<String>,
}

/// The set of served resources. Cheap to read; changes bump a generation counter (used to
/// cache discovery documents and OpenAPI hashes).
#[derive(Default)]
pub struct Registry {
    state: RwLock<State>,
    generation: AtomicU64,
}

impl Registry {
    pub fn with_builtins() -> Registry {
        let registry = Registry::default();
        registry.register("builtin", BUILTINS.iter().map(builtin_def).collect());
        registry
    }

    /// Adds (or replaces) `defs` under `owner`, dropping the owner's previous definitions.
    pub fn register(&self, owner: &str, defs: Vec<ResourceDef>) {
        let mut state = self.state.write();
        state.resources.retain(|_, (_, o)| o != owner);
        for def in defs {
            if !state.group_order.contains(&def.group) {
                state.group_order.push(def.group.clone());
            }
            let key = (def.group.clone(), def.version.clone(), def.plural.clone());
            state.resources.insert(key, (Arc::new(def), owner.to_owned()));
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes everything `owner` registered.
    pub fn unregister(&self, owner: &str) {
        let mut state = self.state.write();
        state.resources.retain(|_, (_, o)| o != owner);
        let groups: Vec<String> = state.resources.values().map(|(d, _)| d.group.clone()).collect();
        state.group_order.retain(|g| groups.contains(g));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let state = self.state.read();
        state
            .resources
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .map(|(d, _)| Arc::clone(d))
    }

    /// The definition objects are stored with, for a (group, plural).
    pub fn storage_def(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let state = self.state.read();
        state
            .resources
            .values()
            .map(|(d, _)| d)
            .find(|d| d.group == group && d.plural == plural && d.version == d.storage_version)
            .cloned()
    }

    /// Every definition, in discovery order (groups in order, versions as registered).
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        let state = self.state.read();
        let mut out = Vec::new();
        for group in &state.group_order {
            let mut defs: Vec<&Arc<ResourceDef>> =
                state.resources.values().map(|(d, _)| d).filter(|d| &d.group == group).collect();
            // Stable: by version preference (storage version first), then by table order.
            defs.sort_by_key(|d| (d.version != d.storage_version, version_rank(&d.version)));
            out.extend(defs.into_iter().cloned());
        }
        out
    }

    /// Versions served for a group, preferred first.
    pub fn group_versions(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for def in self.all() {
            if def.group == group && !versions.contains(&def.version) {
                versions.push(def.version.clone());
            }
        }
        versions
    }

    pub fn groups(&self) -> Vec<String> {
        self.state.read().group_order.clone()
    }

    /// Finds a definition by (group, kind) at its storage version (for owner references and GC).
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        self.all()
            .into_iter()
            .find(|d| d.group == group && d.kind == kind && d.version == d.storage_version)
    }
}

/// Kubernetes' version priority: GA > beta > alpha, higher numbers first.
fn version_rank(version: &str) -> (u8, i64, i64) {
    let digits: String =
        version.trim_start_matches('v').chars().take_while(char::is_ascii_digit).collect();
    let major: i64 = digits.parse().unwrap_or(0);
    let rest = &version.trim_start_matches('v')[digits.len()..];
    let (stage, minor) = if let Some(n) = rest.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = rest.strip_prefix("alpha") {
        (2, n.parse().unwrap_or(0))
    } else if rest.is_empty() {
        (0, 0)
    } else {
        (3, 0)
    };
    (stage, -major, -minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served() {
        let registry = Registry::with_builtins();
        let deploy = registry.get("apps", "v1", "deployments").expect("deployments");
        assert!(deploy.namespaced && deploy.status && deploy.scale.is_some());
        assert_eq!(deploy.key(Some("default"), "web"), "/registry/apps/deployments/default/web");
        assert_eq!(
            registry.get("", "v1", "namespaces").unwrap().key(None, "x"),
            "/registry/core/namespaces/x"
        );
        assert_eq!(registry.groups()[0], "");
    }

    #[test]
    fn version_priority() {
        let mut versions = vec!["v1alpha1", "v1", "v2beta1", "v1beta1", "v2", "foo"];
        versions.sort_by_key(|v| version_rank(v));
        assert_eq!(versions, vec!["v2", "v1", "v2beta1", "v1beta1", "v1alpha1", "foo"]);
    }
}

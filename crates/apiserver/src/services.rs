//! Service address allocation, as kube-apiserver does it: a Service gets a cluster IP (unless
//! headless or ExternalName) and, when of type NodePort or LoadBalancer, a node port for every
//! port that does not ask for one. A requested node port must be in the range and free.
//!
//! What is in use is learnt from the store (followed with `follow::changes`, so
//! deletions by any path — a user, the garbage collector, a namespace going away — free their
//! addresses). An address handed out by admission is reserved until the Service shows up in
//! the store, or for [`RESERVATION`] when its create failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::ApiError;
use apimachinery::status::Cause;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionRequest, Operation};
use crate::follow::Change;
use crate::storage::Storage;

/// Node ports Kubernetes hands out by default (`--service-node-port-range`).
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// How long an address handed out for a create that never reached the store stays taken.
const RESERVATION: Duration = Duration::from_secs(30);
/// Cluster IPs: 10.96.0.0/12 (kube's default service CIDR), the network address left out.
const CLUSTER_IPS: u32 = (1 << 20) - 2;

/// What a stored Service holds.
#[derive(Default)]
struct Held {
    ip: Option<u32>,
    ports: Vec<u16>,
}

#[derive(Default)]
struct State {
    /// By Service (`namespace/name`), from the store.
    held: HashMap<String, Held>,
    ips: HashMap<u32, String>,
    ports: HashMap<u16, String>,
    /// Handed out by admission, not yet seen in the store.
    reserved_ips: HashMap<u32, Instant>,
    reserved_ports: HashMap<u16, Instant>,
    next_ip: u32,
    next_port: u16,
}

impl State {
    fn forget(&mut self, key: &str) {
        if let Some(held) = self.held.remove(key) {
            if let Some(ip) = held.ip {
                self.ips.remove(&ip);
            }
            for port in held.ports {
                self.ports.remove(&port);
            }
        }
    }

    fn record(&mut self, key: &str, service: &Value) {
        self.forget(key);
        let held = Held { ip: cluster_ip(service).and_then(ip_index), ports: node_ports(service) };
        if let Some(ip) = held.ip {
            self.reserved_ips.remove(&ip);
            self.ips.insert(ip, key.to_owned());
        }
        for port in &held.ports {
            self.reserved_ports.remove(port);
            self.ports.insert(*port, key.to_owned());
        }
        self.held.insert(key.to_owned(), held);
    }

    fn ip_free(&self, ip: u32, now: Instant) -> bool {
        !self.ips.contains_key(&ip)
            && self.reserved_ips.get(&ip).is_none_or(|at| now.duration_since(*at) > RESERVATION)
    }

    /// The owner of `port` when another Service holds it (or it is reserved).
    fn port_taken(&self, port: u16, key: &str, now: Instant) -> bool {
        self.ports.get(&port).is_some_and(|owner| owner != key)
            || self
                .reserved_ports
                .get(&port)
                .is_some_and(|at| now.duration_since(*at) <= RESERVATION)
    }

    /// A free address, reserved unless `dry_run` (shown, not held: Kubernetes' dry-run
    /// allocation).
    fn allocate_ip(&mut self, dry_run: bool) -> Option<u32> {
        let now = Instant::now();
        for step in 0..CLUSTER_IPS {
            let candidate = (self.next_ip + step) % CLUSTER_IPS;
            if self.ip_free(candidate, now) {
                if !dry_run {
                    self.next_ip = (candidate + 1) % CLUSTER_IPS;
                    self.reserved_ips.insert(candidate, now);
                }
                return Some(candidate);
            }
        }
        None
    }

    fn allocate_port(&mut self, key: &str, dry_run: bool) -> Option<u16> {
        let now = Instant::now();
        let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
        for step in 0..span {
            let candidate = NODE_PORTS.start() + (self.next_port + step) % span;
            if !self.port_taken(candidate, key, now) && !self.ports.contains_key(&candidate) {
                if !dry_run {
                    self.next_port = (candidate - NODE_PORTS.start() + 1) % span;
                    self.reserved_ports.insert(candidate, now);
                }
                return Some(candidate);
            }
        }
        None
    }
}

/// 10.96.0.0/12 address number `n` (0-based, skipping the network address).
fn ip_text(n: u32) -> String {
    let address = (10 << 24 | 96 << 16) + n + 1;
    std::net::Ipv4Addr::from(address).to_string()
}

fn ip_index(text: &str) -> Option<u32> {
    let address = u32::from(text.parse::<std::net::Ipv4Addr>().ok()?);
    let n = address.checked_sub((10 << 24 | 96 << 16) + 1)?;
    (n < CLUSTER_IPS).then_some(n)
}

fn cluster_ip(service: &Value) -> Option<&str> {
    service.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|ip| !ip.is_empty())
}

fn node_ports(service: &Value) -> Vec<u16> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

fn key_of(service: &Value) -> String {
    format!("{}/{}", apimachinery::object::namespace(service), apimachinery::object::name(service))
}

/// The allocator; one per API server.
#[derive(Default)]
pub struct ServiceAllocator {
    state: Mutex<State>,
}

impl ServiceAllocator {
    fn admit_service(
        &self,
        request: &AdmissionRequest<'_>,
        service: &mut Value,
    ) -> Result<(), ApiError> {
        let key = key_of(service);
        let spec_type =
            service.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_owned();
        service["spec"]["type"] = json!(spec_type);
        let old = request.old;
        // Addresses a Service was given stay its own when an update leaves them out.
        if let Some(old) = old {
            for field in ["clusterIP", "clusterIPs"] {
                if let Some(v) = old.pointer(&format!("/spec/{field}"))
                    && service
                        .pointer(&format!("/spec/{field}"))
                        .is_none_or(|n| n.is_null() || n == "")
                {
                    service["spec"][field] = v.clone();
                }
            }
        }
        let mut state = self.state.lock();
        let headless = cluster_ip(service) == Some("None");
        if !headless && spec_type != "ExternalName" && cluster_ip(service).is_none() {
            let Some(n) = state.allocate_ip(request.dry_run) else {
                return Err(ApiError::new(500, "InternalError", "no cluster IP left to allocate"));
            };
            service["spec"]["clusterIP"] = json!(ip_text(n));
            service["spec"]["clusterIPs"] = json!([ip_text(n)]);
        }
        if !matches!(spec_type.as_str(), "NodePort" | "LoadBalancer") {
            return Ok(());
        }
        let old_ports: Vec<Value> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(ports) = service.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut causes = Vec::new();
        let mut mine: Vec<u16> = Vec::new();
        for (i, port) in ports.iter_mut().enumerate() {
            match port.get("nodePort").and_then(Value::as_u64) {
                Some(requested) => {
                    let field = format!("spec.ports[{i}].nodePort");
                    let value = json!(requested);
                    let Some(p) = u16::try_from(requested).ok().filter(|p| NODE_PORTS.contains(p))
                    else {
                        causes.push(Cause::invalid(field, &value, &format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            NODE_PORTS.start(), NODE_PORTS.end()
                        )));
                        continue;
                    };
                    let already_mine = old_ports.iter().any(|o| o.get("nodePort") == Some(&value));
                    if mine.contains(&p) || (!already_mine && state.port_taken(p, &key, now)) {
                        causes.push(Cause::invalid(
                            field,
                            &value,
                            "provided port is already allocated",
                        ));
                        continue;
                    }
                    mine.push(p);
                }
                None => {
                    // An update that leaves out a port's node port keeps the one it had.
                    let kept = old_ports
                        .iter()
                        .find(|o| {
                            o.get("port") == port.get("port")
                                && o.get("protocol") == port.get("protocol")
                        })
                        .and_then(|o| o.get("nodePort").cloned());
                    let p = match kept {
                        Some(p) => p,
                        None => match state.allocate_port(&key, request.dry_run) {
                            Some(p) => json!(p),
                            None => {
                                return Err(ApiError::new(
                                    500,
                                    "InternalError",
                                    "no node port left to allocate",
                                ));
                            }
                        },
                    };
                    port["nodePort"] = p;
                }
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                "Service",
                "",
                apimachinery::object::name(service),
                causes,
            ));
        }
        if request.operation == Operation::Create && !request.dry_run {
            for p in mine {
                state.reserved_ports.insert(p, now);
            }
        }
        Ok(())
    }

    /// Follows every Service in the store until shutdown.
    pub async fn run(self: Arc<Self>, api: Arc<Storage>) {
        let Some(def) = api.registry.get("", "v1", "services") else { return };
        let prefix = def.collection_prefix(None);
        crate::follow::changes(api, prefix.as_bytes(), |change| {
            let mut state = self.state.lock();
            match change {
                Change::Relisting => {
                    state.held.clear();
                    state.ips.clear();
                    state.ports.clear();
                }
                Change::Put(service) => state.record(&key_of(&service), &service),
                Change::Deleted(service) => state.forget(&key_of(&service)),
            }
            None::<std::future::Ready<()>>
        })
        .await;
    }
}

impl Admission for ServiceAllocator {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if request.def.kind != "Service"
            || !request.def.group.is_empty()
            || request.subresource.is_some()
            || !matches!(request.operation, Operation::Create | Operation::Update)
        {
            return Ok(());
        }
        self.admit_service(request, object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_numbered_within_the_service_range() {
        assert_eq!(ip_text(0), "10.96.0.1");
        assert_eq!(ip_text(255), "10.96.1.0");
        assert_eq!(ip_index("10.96.1.0"), Some(255));
        assert_eq!(ip_index("10.95.0.1"), None);
        assert_eq!(ip_index(&ip_text(CLUSTER_IPS - 1)), Some(CLUSTER_IPS - 1));
    }

    #[test]
    fn allocation_skips_what_is_held_or_reserved_and_reuses_what_is_freed() {
        let mut state = State::default();
        let held = json!({"metadata": {"namespace": "a", "name": "s"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80, "nodePort": 30000}]}});
        state.record("a/s", &held);
        assert_eq!(state.allocate_ip(false), Some(1), "10.96.0.1 is held");
        // A dry run shows the next free port and holds nothing.
        assert_eq!(state.allocate_port("b/t", true), Some(30001), "30000 is held");
        assert_eq!(state.allocate_port("b/t", false), Some(30001), "the dry run held nothing");
        assert_eq!(state.allocate_port("b/t", false), Some(30002), "30001 is reserved");
        assert!(state.port_taken(30000, "b/t", Instant::now()));
        assert!(!state.port_taken(30000, "a/s", Instant::now()), "its own port");
        state.forget("a/s");
        assert!(!state.port_taken(30000, "b/t", Instant::now()), "freed");
        // The store confirms a reservation: it is held, no longer reserved.
        state.record("b/t", &json!({"spec": {"ports": [{"nodePort": 30001}]}}));
        assert!(!state.reserved_ports.contains_key(&30001) && state.ports.contains_key(&30001));
    }
}

//! `karmada bench scheduler`: the scheduling algorithm alone, over many clusters.

use std::time::Instant;

use clap::Args as ClapArgs;
use karmada_api::policy::Placement;
use scheduler::{BindingInfo, Capacity, ClusterInfo, Plugins};

use super::report::{Report, Samples};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Bindings scheduled per cluster count.
    #[arg(long, default_value_t = 10_000)]
    bindings: usize,
    /// Cluster counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    clusters: Vec<usize>,
    #[arg(long)]
    json: bool,
}

fn clusters(n: usize) -> Vec<ClusterInfo> {
    (0..n)
        .map(|i| ClusterInfo {
            name: format!("member{i}"),
            labels: [("location".to_string(), if i % 2 == 0 { "eu" } else { "us" }.to_string())].into_iter().collect(),
            provider: "sim".into(),
            region: format!("region{}", i % 5),
            zones: vec![format!("zone{}", i % 10)],
            capacity: Some(Capacity {
                allocatable: [("cpu".to_string(), 64_000), ("memory".to_string(), 256i128 << 40), ("pods".to_string(), 1_100_000)].into_iter().collect(),
                allocated: [("cpu".to_string(), (i as i128 % 7) * 1000)].into_iter().collect(),
                ..Capacity::default()
            }),
            ..ClusterInfo::default()
        })
        .collect()
}

fn binding(i: usize, n: usize) -> BindingInfo {
    let placement: serde_json::Value = match i % 3 {
        0 => serde_json::json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"location": "eu"}}}, "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 3, "minGroups": 1}]}),
        1 => {
            let names: Vec<String> = (0..3).map(|k| format!("member{}", (i + k * 7) % n)).collect();
            serde_json::json!({"clusterAffinity": {"clusterNames": names}, "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                "weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": [names[0]]}, "weight": 2}, {"targetCluster": {"clusterNames": [names[1], names[2]]}, "weight": 1}]}}})
        }
        _ => serde_json::json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 3}, {"spreadByField": "cluster", "minGroups": 3, "maxGroups": 3}],
            "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}),
    };
    BindingInfo {
        gvk: "apps/v1/Deployment".into(),
        replicas: 3 + (i % 10) as i32,
        requests: [("cpu".to_string(), 250)].into_iter().collect(),
        placement: serde_json::from_value::<Placement>(placement).unwrap_or_default(),
        ..BindingInfo::default()
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::default();
    let plugins = Plugins::default();
    for n in &args.clusters {
        let cs = clusters(*n);
        let bindings: Vec<BindingInfo> = (0..args.bindings).map(|i| binding(i, *n)).collect();
        let mut samples = Samples::default();
        let mut failed = 0;
        let started = Instant::now();
        for b in &bindings {
            let t = Instant::now();
            if scheduler::schedule(b, &cs, &plugins).is_err() {
                failed += 1;
            }
            samples.push(t.elapsed());
        }
        let elapsed = started.elapsed();
        let subject = format!("scheduler core, {n} clusters");
        report.add(&subject, "decisions/s", args.bindings as f64 / elapsed.as_secs_f64(), "ops/s");
        report.latency(&subject, "decision latency", &mut samples);
        report.add(&subject, "unschedulable decisions", failed as f64, "bindings");
    }
    report.print(args.json)
}

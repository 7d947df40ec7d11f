//! Shared helpers for printing benchmark results as a table or JSON.

use std::io::Write;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// Latency samples, summarised as percentiles.
#[derive(Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// The `p`-th percentile (0..=100), or zero without samples.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }
}

/// One printed row: a subject (backend, component), a metric, a value and its unit.
pub struct Row {
    pub subject: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, subject: &str, metric: &str, value: f64, unit: &'static str) {
        self.rows.push(Row { subject: subject.into(), metric: metric.into(), value, unit });
    }

    pub fn latency(&mut self, subject: &str, metric: &str, samples: &mut Samples) {
        for p in [50.0, 99.0] {
            let d = samples.percentile(p);
            self.add(subject, &format!("{metric} p{p}"), d.as_secs_f64() * 1e6, "µs");
        }
    }

    pub fn print(&self, json_output: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json_output {
            let rows: Vec<Value> = self
                .rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("subject".into(), json!(r.subject));
                    m.insert("metric".into(), json!(r.metric));
                    m.insert("value".into(), json!(r.value));
                    m.insert("unit".into(), json!(r.unit));
                    Value::Object(m)
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            return Ok(());
        }
        let w0 = self.rows.iter().map(|r| r.subject.len()).max().unwrap_or(0).max(7);
        let w1 = self.rows.iter().map(|r| r.metric.chars().count()).max().unwrap_or(0).max(6);
        writeln!(out, "{:<w0$}  {:<w1$}  {:>14}  unit", "subject", "metric", "value")?;
        for r in &self.rows {
            let value = if r.value >= 100.0 {
                format!("{:.0}", r.value)
            } else {
                format!("{:.2}", r.value)
            };
            writeln!(out, "{:<w0$}  {:<w1$}  {:>14}  {}", r.subject, r.metric, value, r.unit)?;
        }
        Ok(())
    }
}

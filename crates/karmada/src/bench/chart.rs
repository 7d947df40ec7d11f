//! `karmada bench chart`: draws BENCHMARKS.md's chart (PNG) from the JSON that
//! `karmada bench propagate --json` prints: propagation latency percentiles and Works/s by
//! scale, beside upstream Karmada's published throughput.
//!
//! The drawing is ours: a palette canvas with rectangles, lines and an 8×8 bitmap font, encoded
//! as an indexed-colour PNG (zlib via miniz_oxide).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Result files: each the output of `karmada bench propagate --json`.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the PNG.
    #[arg(long, default_value = "benchmarks/propagate.png")]
    out: PathBuf,
    /// Compare runs of one scale by their label (`bench propagate --label`, e.g. karmada-rs
    /// and upstream against the same control plane): time, CPU per process, writes per
    /// workload and peak RSS, each the mean of a label's runs.
    #[arg(long)]
    side_by_side: bool,
}

fn read_rows(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not the JSON of `bench propagate --json`", path.display()))
}

fn write_png(out: &std::path::Path, canvas: &Canvas) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, canvas.png())?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.side_by_side {
        let mut runs = Vec::new();
        for path in &args.inputs {
            runs.push(
                Labelled::from_rows(&read_rows(path)?)
                    .with_context(|| path.display().to_string())?,
            );
        }
        let means = Labelled::means(&runs)?;
        write_png(&args.out, &draw_side_by_side(&means))?;
        eprintln!("wrote {} ({} runs, {} labels)", args.out.display(), runs.len(), means.len());
        return Ok(());
    }
    let mut points = Vec::new();
    for path in &args.inputs {
        points
            .push(Point::from_rows(&read_rows(path)?).with_context(|| path.display().to_string())?);
    }
    points.sort_by_key(|p| (p.clusters, p.workloads));
    write_png(&args.out, &draw(&points))?;
    eprintln!("wrote {} ({} scales)", args.out.display(), points.len());
    Ok(())
}

/// One `bench propagate` run.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub clusters: u64,
    pub workloads: u64,
    /// Seconds.
    pub member_p50: f64,
    pub member_p99: f64,
    pub ready_p99: f64,
    pub works_per_s: f64,
    pub rss_mib: f64,
}

impl Point {
    pub fn from_rows(rows: &Value) -> anyhow::Result<Point> {
        let rows = rows.as_array().context("expected a JSON array of rows")?;
        let find = |metric: &str| -> anyhow::Result<(String, f64)> {
            rows.iter()
                .find(|r| {
                    r["subject"].as_str().is_some_and(|s| s.starts_with("propagate "))
                        && r["metric"] == metric
                })
                .and_then(|r| Some((r["subject"].as_str()?.to_owned(), r["value"].as_f64()?)))
                .with_context(|| format!("no {metric:?} row"))
        };
        let (subject, member_p50) = find("created → object in member p50")?;
        // "propagate 10×200 (Divided, ...)"
        let scale = subject.split_whitespace().nth(1).unwrap_or_default();
        let (clusters, workloads) = match scale.split_once('×') {
            Some((c, w)) => (c.parse()?, w.parse()?),
            None => bail!("cannot read the scale from {subject:?}"),
        };
        Ok(Point {
            clusters,
            workloads,
            member_p50: member_p50 / 1e6,
            member_p99: find("created → object in member p99")?.1 / 1e6,
            ready_p99: find("created → Ready status on template p99")?.1 / 1e6,
            works_per_s: find("Works applied/s (first create → last applied)")?.1,
            rss_mib: find("control-plane peak RSS (3 processes)")?.1,
        })
    }

    fn label(&self) -> String {
        format!("{}x{}", self.clusters, self.workloads)
    }
}

/// One `bench propagate` run under its label, for the side-by-side chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The label (`--label`), the last item of the subject's parentheses.
    pub label: String,
    /// The scale, e.g. `10×1000`: runs of different scales are not compared.
    pub scale: String,
    /// Seconds until every member object exists.
    pub to_members: f64,
    /// CPU seconds during the load, by process.
    pub cpu: Vec<(String, f64)>,
    pub writes_per_workload: f64,
    pub rss_mib: f64,
}

impl Labelled {
    pub fn from_rows(rows: &Value) -> anyhow::Result<Labelled> {
        let rows = rows.as_array().context("expected a JSON array of rows")?;
        let propagate =
            |r: &&Value| r["subject"].as_str().is_some_and(|s| s.starts_with("propagate "));
        let find = |metric: &str| -> anyhow::Result<f64> {
            rows.iter()
                .filter(propagate)
                .find(|r| r["metric"] == metric)
                .and_then(|r| r["value"].as_f64())
                .with_context(|| format!("no {metric:?} row"))
        };
        let subject = rows
            .iter()
            .find(propagate)
            .and_then(|r| r["subject"].as_str())
            .context("no `propagate` rows")?;
        // "propagate 10×1000 (Divided, 2 replicas, 3 clusters each, upstream[, 10/s])"
        let scale = subject.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let inside = subject.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map(|(i, _)| i);
        let label = inside
            .and_then(|i| i.split(", ").nth(3))
            .with_context(|| format!("no label in {subject:?}"))?
            .to_owned();
        let cpu = rows
            .iter()
            .filter(propagate)
            .filter_map(|r| {
                let name = r["metric"].as_str()?.strip_prefix("  of which ")?;
                Some((name.trim_end_matches(" (since start)").to_owned(), r["value"].as_f64()?))
            })
            .collect();
        let rss = rows
            .iter()
            .filter(propagate)
            .find(|r| r["metric"].as_str().is_some_and(|m| m.starts_with("control-plane peak RSS")))
            .and_then(|r| r["value"].as_f64())
            .context("no peak RSS row (run with --pid)")?;
        Ok(Labelled {
            label,
            scale,
            to_members: find("time until every member object exists")?,
            cpu,
            writes_per_workload: find("control-plane writes per workload")?,
            rss_mib: rss,
        })
    }

    /// The mean of each label's runs, labels in the order first seen; all of one scale.
    pub fn means(runs: &[Labelled]) -> anyhow::Result<Vec<Labelled>> {
        let Some(first) = runs.first() else { bail!("no runs") };
        if let Some(other) = runs.iter().find(|r| r.scale != first.scale) {
            bail!(
                "runs of different scales ({} and {}) are not compared",
                first.scale,
                other.scale
            );
        }
        let mut labels: Vec<&str> = Vec::new();
        for r in runs {
            if !labels.contains(&r.label.as_str()) {
                labels.push(&r.label);
            }
        }
        Ok(labels
            .into_iter()
            .map(|label| {
                let mine: Vec<&Labelled> = runs.iter().filter(|r| r.label == label).collect();
                let n = mine.len() as f64;
                let mean =
                    |f: &dyn Fn(&Labelled) -> f64| mine.iter().map(|r| f(r)).sum::<f64>() / n;
                let cpu = mine[0]
                    .cpu
                    .iter()
                    .map(|(name, _)| {
                        let of = |r: &Labelled| {
                            r.cpu.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v)
                        };
                        (name.clone(), mean(&of))
                    })
                    .collect();
                Labelled {
                    label: label.to_owned(),
                    scale: first.scale.clone(),
                    to_members: mean(&|r| r.to_members),
                    cpu,
                    writes_per_workload: mean(&|r| r.writes_per_workload),
                    rss_mib: mean(&|r| r.rss_mib),
                }
            })
            .collect())
    }
}

/// Colours of the compared labels, in order.
const SERIES: [u8; 4] = [4, 5, 6, 3];

/// The side-by-side chart: seconds (to all in members, CPU by process), writes per workload,
/// and peak RSS, one bar per label in each group.
pub fn draw_side_by_side(runs: &[Labelled]) -> Canvas {
    let mut c = Canvas::new(1000, 560);
    let scale = runs.first().map_or("", |r| r.scale.as_str()).replace('×', "x");
    c.text(20, 14, &format!("bench propagate {scale}, side by side"), BLACK, 2);
    let series: Vec<(&str, u8)> =
        runs.iter().zip(SERIES.iter().cycle()).map(|(r, c)| (r.label.as_str(), *c)).collect();
    let mut processes: Vec<String> = Vec::new();
    for r in runs {
        for (name, _) in &r.cpu {
            if !processes.contains(name) {
                processes.push(name.clone());
            }
        }
    }
    let cpu_of =
        |r: &Labelled, name: &str| r.cpu.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v);
    let mut seconds =
        vec![("to members".to_owned(), runs.iter().map(|r| r.to_members).collect::<Vec<f64>>())];
    seconds.push((
        "CPU total".to_owned(),
        runs.iter().map(|r| r.cpu.iter().map(|(_, v)| v).sum()).collect(),
    ));
    for name in &processes {
        let short = name.replace("controller-manager", "cm");
        seconds.push((short, runs.iter().map(|r| cpu_of(r, name)).collect()));
    }
    bars(
        &mut c,
        Area { x: 60, y: 70, w: 500, h: 400 },
        "seconds: wall time, CPU",
        &seconds,
        &series,
        None,
        true,
    );
    let writes = vec![("writes".to_owned(), runs.iter().map(|r| r.writes_per_workload).collect())];
    bars(
        &mut c,
        Area { x: 630, y: 70, w: 140, h: 400 },
        "per workload",
        &writes,
        &series,
        None,
        false,
    );
    let rss = vec![("peak RSS".to_owned(), runs.iter().map(|r| r.rss_mib).collect())];
    bars(&mut c, Area { x: 840, y: 70, w: 140, h: 400 }, "MiB", &rss, &series, None, false);
    c.text(
        20,
        535,
        "each bar the mean of a label's runs; cm = controller-manager; see BENCHMARKS.md",
        GREY,
        1,
    );
    c
}

const WHITE: u8 = 0;
const BLACK: u8 = 1;
const GRID: u8 = 2;
const GREY: u8 = 3;
const BLUE: u8 = 4;
const ORANGE: u8 = 5;
const GREEN: u8 = 6;
const RED: u8 = 7;
const PALETTE: [[u8; 3]; 8] = [
    [255, 255, 255],
    [20, 20, 20],
    [225, 225, 225],
    [120, 120, 120],
    [52, 101, 164],
    [237, 139, 0],
    [78, 154, 6],
    [204, 0, 0],
];

/// The chart: latency percentiles (left) and throughput (right) by scale.
pub fn draw(points: &[Point]) -> Canvas {
    let mut c = Canvas::new(1000, 560);
    c.text(20, 14, "bench propagate on 2 vCPUs (Divided over 3 clusters)", BLACK, 2);
    let groups: Vec<(String, Vec<f64>)> =
        points.iter().map(|p| (p.label(), vec![p.member_p50, p.member_p99, p.ready_p99])).collect();
    bars(
        &mut c,
        Area { x: 70, y: 70, w: 400, h: 400 },
        "propagation latency (s)",
        &groups,
        &[("to member p50", BLUE), ("to member p99", ORANGE), ("to Ready p99", GREEN)],
        None,
        true,
    );
    let groups: Vec<(String, Vec<f64>)> =
        points.iter().map(|p| (p.label(), vec![p.works_per_s])).collect();
    bars(
        &mut c,
        Area { x: 580, y: 70, w: 400, h: 400 },
        "Works applied per second",
        &groups,
        &[("karmada-rs", BLUE)],
        Some((200.0, "upstream v1.3 report: ~200 Works/s")),
        true,
    );
    c.text(20, 535, "scale = clusters x workloads; each workload is a Deployment + ConfigMap; see BENCHMARKS.md", GREY, 1);
    c
}

struct Area {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// A "nice" axis maximum and tick step for values up to `max`.
pub fn axis(max: f64) -> (f64, f64) {
    let max = if max > 0.0 && max.is_finite() { max } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn number(v: f64) -> String {
    if v >= 10.0 || v == v.trunc() { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn bars(
    c: &mut Canvas,
    a: Area,
    title: &str,
    groups: &[(String, Vec<f64>)],
    series: &[(&str, u8)],
    reference: Option<(f64, &str)>,
    legend: bool,
) {
    c.text(a.x, a.y - 22, title, BLACK, 1);
    let highest = groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .chain(reference.map(|r| r.0))
        .fold(0.0, f64::max);
    let (top, step) = axis(highest * 1.05);
    let y_of = |v: f64| a.y + a.h - ((v / top) * a.h as f64).round() as usize;
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let y = y_of(tick);
        c.rect(a.x, y, a.w, 1, GRID);
        let label = number(tick);
        c.text(a.x - 6 - Canvas::text_width(&label, 1), y.saturating_sub(4), &label, GREY, 1);
        tick += step;
    }
    c.rect(a.x, a.y, 1, a.h + 1, BLACK);
    c.rect(a.x, a.y + a.h, a.w, 1, BLACK);
    if groups.is_empty() {
        c.text(a.x + 10, a.y + a.h / 2, "no results", GREY, 1);
        return;
    }
    let slot = a.w / groups.len();
    let bar = ((slot * 3 / 4) / series.len()).max(2);
    for (i, (label, values)) in groups.iter().enumerate() {
        let left = a.x + i * slot + (slot - bar * series.len()) / 2;
        for (j, v) in values.iter().enumerate() {
            let y = y_of(*v);
            let color = series.get(j).map_or(GREY, |s| s.1);
            c.rect(left + j * bar, y, bar.saturating_sub(2), a.y + a.h - y, color);
            let text = number(*v);
            let tx = (left + j * bar + bar / 2).saturating_sub(Canvas::text_width(&text, 1) / 2);
            c.text(tx, y.saturating_sub(10), &text, BLACK, 1);
        }
        let lx = (a.x + i * slot + slot / 2).saturating_sub(Canvas::text_width(label, 1) / 2);
        c.text(lx, a.y + a.h + 8, label, BLACK, 1);
    }
    if let Some((value, text)) = reference {
        let y = y_of(value);
        let mut x = a.x;
        while x < a.x + a.w {
            c.rect(x, y, 6.min(a.x + a.w - x), 2, RED);
            x += 10;
        }
        c.text(a.x + a.w - Canvas::text_width(text, 1), y.saturating_sub(12), text, RED, 1);
    }
    if !legend {
        return;
    }
    // Legend under the axis.
    let mut x = a.x;
    for (name, color) in series {
        c.rect(x, a.y + a.h + 28, 10, 10, *color);
        c.text(x + 14, a.y + a.h + 29, name, BLACK, 1);
        x += 24 + Canvas::text_width(name, 1);
    }
}

/// An indexed-colour raster.
pub struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas { w, h, px: vec![WHITE; w * h] }
    }

    #[cfg(test)]
    pub fn pixel(&self, x: usize, y: usize) -> u8 {
        self.px[y * self.w + x]
    }

    pub fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: u8) {
        for yy in y..(y + h).min(self.h) {
            for xx in x..(x + w).min(self.w) {
                self.px[yy * self.w + xx] = color;
            }
        }
    }

    pub fn text_width(text: &str, scale: usize) -> usize {
        text.chars().count() * 8 * scale
    }

    /// Draws ASCII text with the public-domain 8×8 font (other characters print as `?`).
    pub fn text(&mut self, x: usize, y: usize, text: &str, color: u8, scale: usize) {
        for (i, ch) in text.chars().enumerate() {
            let code = if ch.is_ascii() { ch as usize } else { '?' as usize };
            let rows = font8x8::legacy::BASIC_LEGACY[code];
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.rect(x + (i * 8 + col) * scale, y + row * scale, scale, scale, color);
                    }
                }
            }
        }
    }

    /// The image as a PNG (8-bit palette).
    pub fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w + 1) * self.h);
        for row in self.px.chunks(self.w) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::new();
        header.extend_from_slice(&(self.w as u32).to_be_bytes());
        header.extend_from_slice(&(self.h as u32).to_be_bytes());
        header.extend_from_slice(&[8, 3, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &header);
        chunk(&mut out, b"PLTE", &PALETTE.concat());
        chunk(&mut out, b"IDAT", &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 9));
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows(scale: &str, p50: f64, works: f64) -> Value {
        let s = format!("propagate {scale} (Divided, 2 replicas, 3 clusters each, redb)");
        json!([
            {"subject": s, "metric": "created → object in member p50", "value": p50 * 1e6, "unit": "µs"},
            {"subject": s, "metric": "created → object in member p99", "value": 2.0 * p50 * 1e6, "unit": "µs"},
            {"subject": s, "metric": "created → Ready status on template p99", "value": 3.0 * p50 * 1e6, "unit": "µs"},
            {"subject": s, "metric": "Works applied/s (first create → last applied)", "value": works, "unit": "ops/s"},
            {"subject": s, "metric": "control-plane peak RSS (3 processes)", "value": 287.0, "unit": "MiB"},
            {"subject": "controller restart", "metric": "apiserver RSS", "value": 1.0, "unit": "MiB"},
        ])
    }

    #[test]
    fn reads_a_propagate_report() {
        let p = Point::from_rows(&rows("100×1000", 1.5, 61.0)).unwrap();
        assert_eq!((p.clusters, p.workloads), (100, 1000));
        assert_eq!((p.member_p50, p.member_p99, p.ready_p99), (1.5, 3.0, 4.5));
        assert_eq!(p.works_per_s, 61.0);
        assert!(Point::from_rows(&json!([{"subject": "x", "metric": "y", "value": 1}])).is_err());
    }

    #[test]
    fn axes_are_round_and_cover_the_data() {
        for (max, want) in
            [(7.3, (8.0, 2.0)), (61.0, (80.0, 20.0)), (0.42, (0.5, 0.1)), (200.0, (200.0, 50.0))]
        {
            let (top, step) = axis(max);
            assert!(top >= max, "{max}: {top}");
            assert!(
                (top - want.0).abs() < 1e-9 && (step - want.1).abs() < 1e-9,
                "{max}: {top} {step}"
            );
        }
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn draws_bars_proportional_to_values_and_a_valid_png() {
        let points = vec![
            Point::from_rows(&rows("10×200", 2.0, 100.0)).unwrap(),
            Point::from_rows(&rows("10×1000", 4.0, 50.0)).unwrap(),
        ];
        let c = draw(&points);
        // In the right panel (x 580..980, bottom at y 470) the first bar is twice as tall as
        // the second: count its blue pixels in the column through its middle.
        let height = |x: usize| (70..470).filter(|y| c.pixel(x, *y) == BLUE).count();
        let slot = 400 / 2;
        let first = height(580 + slot / 2);
        let second = height(580 + slot + slot / 2);
        assert!(first > 0 && second > 0);
        assert!((first as f64 / second as f64 - 2.0).abs() < 0.05, "{first} vs {second}");
        let png = c.png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1000);
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat(&png)).unwrap();
        assert_eq!(raw.len(), (1000 + 1) * 560);
    }

    fn labelled(label: &str, scale: &str, to_members: f64, cm: f64) -> Value {
        let s = format!("propagate {scale} (Divided, 2 replicas, 3 clusters each, {label})");
        json!([
            {"subject": s, "metric": "time until every member object exists", "value": to_members, "unit": "s"},
            {"subject": s, "metric": "control-plane writes per workload", "value": 20.0, "unit": "requests"},
            {"subject": s, "metric": "control-plane peak RSS (2 processes)", "value": 400.0, "unit": "MiB"},
            {"subject": s, "metric": "  of which apiserver", "value": 8.0, "unit": "s"},
            {"subject": s, "metric": "  of which controller-manager", "value": cm, "unit": "s"},
        ])
    }

    #[test]
    fn side_by_side_runs_are_averaged_by_label_and_drawn_to_scale() {
        let runs: Vec<Labelled> = [
            labelled("karmada-rs", "10×1000", 12.0, 5.0),
            labelled("upstream", "10×1000", 50.0, 40.0),
            labelled("karmada-rs", "10×1000", 14.0, 7.0),
        ]
        .iter()
        .map(|r| Labelled::from_rows(r).unwrap())
        .collect();
        assert_eq!(runs[1].label, "upstream");
        assert_eq!(
            runs[1].cpu,
            [("apiserver".to_owned(), 8.0), ("controller-manager".to_owned(), 40.0)]
        );
        let means = Labelled::means(&runs).unwrap();
        assert_eq!(means.len(), 2);
        assert_eq!((means[0].label.as_str(), means[0].to_members), ("karmada-rs", 13.0));
        assert_eq!(means[0].cpu[1], ("controller-manager".to_owned(), 6.0));
        let c = draw_side_by_side(&means);
        // In the seconds panel (x 60..560, 4 groups: to members, CPU total, apiserver, cm),
        // the "to members" bars are 13 and 50 s tall: count their pixels.
        let height = |x: usize, color: u8| (70..470).filter(|y| c.pixel(x, *y) == color).count();
        let slot = 500 / 4;
        let bar = (slot * 3 / 4) / 2;
        let left = 60 + (slot - bar * 2) / 2;
        let ours = height(left + bar / 2, SERIES[0]);
        let theirs = height(left + bar + bar / 2, SERIES[1]);
        assert!((theirs as f64 / ours as f64 - 50.0 / 13.0).abs() < 0.1, "{ours} vs {theirs}");
        let other_scale = Labelled::from_rows(&labelled("x", "10×200", 1.0, 1.0)).unwrap();
        assert!(Labelled::means(&[runs[0].clone(), other_scale]).is_err());
    }

    fn idat(png: &[u8]) -> Vec<u8> {
        let mut at = 8;
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            if &png[at + 4..at + 8] == b"IDAT" {
                return png[at + 8..at + 8 + len].to_vec();
            }
            at += 12 + len;
        }
        panic!("no IDAT")
    }
}

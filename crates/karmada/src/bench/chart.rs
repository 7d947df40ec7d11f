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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut points = Vec::new();
    for path in &args.inputs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let rows: Value = serde_json::from_str(&text).with_context(|| {
            format!("{}: not the JSON of `bench propagate --json`", path.display())
        })?;
        points.push(Point::from_rows(&rows).with_context(|| path.display().to_string())?);
    }
    points.sort_by_key(|p| (p.clusters, p.workloads));
    let png = draw(&points).png();
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, png)?;
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

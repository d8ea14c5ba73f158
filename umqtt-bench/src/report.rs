//! What the run prints on stdout: the table with its header line, the
//! verdicts and the notes, or JSON lines; and how numbers are written.

use std::fmt::Write as _;

use crate::args::Config;
use crate::clients::{CLIENTS, Who};
use crate::metrics::{METRICS, Metric, Ratio, verdicts};
use crate::results::Results;

/// What the header line says about the run besides the config.
pub struct RunInfo<'a> {
    /// The broker, e.g. "mosquitto 2.0.11".
    pub broker: &'a str,
    /// The machine, from [`machine`].
    pub machine: &'a str,
    /// The capacity of rumqttc's request channel.
    pub rumqttc_capacity: usize,
}

/// `value` with thin thousands separators and `decimals` decimals.
pub fn fmt_num(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d.to_string()),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The CPU, cores, kernel and load average of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    // Other work on the machine skews every figure: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .map_or(String::new(), |l| format!(", load average {l}"));
    format!("{cpu}, {cores} cores, Linux {kernel}{load}")
}

/// Prints the results: JSON lines with `--json`, else the table.
pub fn print(config: &Config, info: &RunInfo<'_>, results: &Results) {
    if config.json {
        print_json(results);
    } else {
        print_text(config, info, results);
    }
}

/// The header line, the table, the verdicts and the notes.
fn print_text(config: &Config, info: &RunInfo<'_>, results: &Results) {
    println!();
    println!(
        "umqtt-bench ({} run, {} repetition{}): {} on loopback; {}; 64-byte payloads, MQTT 3.1.1; rumqttc request channel {}",
        config.mode(),
        config.reps,
        if config.reps == 1 { "" } else { "s" },
        info.broker,
        info.machine,
        info.rumqttc_capacity
    );
    println!();
    print_table(config, results);
    let verdicts = verdicts(results, config);
    if !verdicts.is_empty() {
        println!();
        println!("Targets (issues 5 and 16):");
    }
    for (ok, text) in verdicts {
        println!("  [{}] {text}", if ok { "met" } else { "MISSED" });
    }
    if !results.notes.is_empty() {
        println!();
        println!("Notes:");
        for n in &results.notes {
            println!("  - {n}");
        }
    }
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `v` as a JSON number (`null` where missing or not finite).
fn json_number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

/// One JSON object per measured figure (the TLS rows with
/// `ratio_to_rumqttc` instead of `ratio_to_raw`).
fn print_json(results: &Results) {
    for metric in &METRICS {
        for who in CLIENTS {
            let Some(value) = results.get(metric.id, who) else {
                continue;
            };
            println!(
                "{{\"test\": {}, \"client\": {}, \"value\": {}, \"unit\": {}, \"{}\": {}}}",
                json_string(metric.id),
                json_string(who.name()),
                json_number(Some(value)),
                json_string(metric.unit),
                metric.ratio_name(),
                json_number(metric.ratio(results, who)),
            );
        }
    }
}

/// A figure and, for the clients, its ratio to the raw limit.
fn cell(results: &Results, metric: &Metric, who: Who) -> String {
    let Some(value) = results.get(metric.id, who) else {
        return "—".into();
    };
    let mut text = fmt_num(value, metric.decimals);
    if who != Who::Raw
        && let Some(r) = metric.ratio(results, who)
    {
        let _ = write!(text, " ({r:.2})");
    }
    text
}

/// Widths of the clients' columns.
const WIDTHS: [usize; 3] = [14, 22, 22];

/// The Markdown table of every metric that has a figure.
fn print_table(config: &Config, results: &Results) {
    let measured: Vec<&Metric> = METRICS
        .iter()
        .filter(|m| CLIENTS.iter().any(|&w| results.get(m.id, w).is_some()))
        .collect();
    let labels: Vec<String> = measured.iter().map(|m| m.label(config)).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut header = format!("| {:<label_width$} | {:<5} ", "test", "unit");
    for (who, w) in CLIENTS.iter().zip(WIDTHS) {
        let _ = write!(header, "| {:>w$} ", who.column());
    }
    header.push('|');
    println!("{header}");
    let mut rule = format!("|{}|{}", "-".repeat(label_width + 2), "-".repeat(7));
    for w in WIDTHS {
        let _ = write!(rule, "|{}:", "-".repeat(w + 1));
    }
    rule.push('|');
    println!("{rule}");
    for (metric, label) in measured.iter().zip(&labels) {
        let mut line = format!("| {label:<label_width$} | {:<5} ", metric.unit);
        for (who, w) in CLIENTS.iter().zip(WIDTHS) {
            let _ = write!(line, "| {:>w$} ", cell(results, metric, *who));
        }
        line.push('|');
        println!("{line}");
    }
    println!();
    println!("Ratios in parentheses are to the raw limit (raw = 1.00).");
    if METRICS
        .iter()
        .any(|m| m.ratio == Ratio::ToRumqttc && results.get(m.id, Who::Umqtt).is_some())
    {
        println!(
            "TLS rows: umqtt-simple over TlsStack<StdTcpStack> (embedded-tls: TLS 1.3, P-256) or over \
             RustlsStack<StdTcpStack> (rustls engine, ring: TLS 1.3, X25519), rumqttc over rustls (ring) \
             in both; the ratio is umqtt-simple's figure over rumqttc's."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(fmt_num(0.0, 0), "0");
        assert_eq!(fmt_num(999.0, 0), "999");
        assert_eq!(fmt_num(100_000.0, 0), "100 000");
        assert_eq!(fmt_num(-1234.5, 1), "-1 234.5");
        assert_eq!(fmt_num(0.0034, 3), "0.003");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_number(Some(f64::NAN)), "null");
        assert_eq!(json_number(Some(1.5)), "1.5");
    }
}

//! The figures of the table and the targets of issue 5, as data: one row per
//! metric, one entry per target, each read by a small loop (in [`crate::report`]
//! and [`verdicts`]).

use std::fmt::Write as _;

use Better::{Higher, Lower, Neither};
use Ratio::{ToRaw, ToRawOf, ToRumqttc};

use crate::args::Config;
use crate::clients::Who;
use crate::report::fmt_num;
use crate::results::Results;

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// More is better.
    Higher,
    /// Less is better.
    Lower,
    /// Information only.
    Neither,
}

/// What a figure's ratio (in parentheses in the table) is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ratio {
    /// No ratio: it would mean nothing.
    None,
    /// The raw limit's figure of the same metric.
    ToRaw,
    /// The raw limit's figure of another metric.
    ToRawOf(&'static str),
    /// rumqttc's figure of the same metric, in umqtt-simple's column only
    /// (the TLS rows: the raw limit has no TLS).
    ToRumqttc,
}

/// One line of the table.
pub struct Metric {
    /// The id in JSON and in [`Results`].
    pub id: &'static str,
    /// The label; `{qos0}`, `{qos1}`, `{qos1_window}`, `{slow_1}`,
    /// `{slow_window}`, `{rtt}` (counts), `{window}` (messages in flight),
    /// `{idle}` and `{keepalive}` (seconds) are filled in from the
    /// [`Config`].
    pub label: &'static str,
    /// The unit.
    pub unit: &'static str,
    /// Which way is better ("ahead of rumqttc" verdicts for all but
    /// [`Better::Neither`]).
    pub better: Better,
    /// Decimals shown.
    pub decimals: usize,
    /// What the ratio in parentheses is to.
    pub ratio: Ratio,
}

/// Shorthand for the table below.
const fn m(
    id: &'static str,
    label: &'static str,
    unit: &'static str,
    better: Better,
    decimals: usize,
    ratio: Ratio,
) -> Metric {
    Metric {
        id,
        label,
        unit,
        better,
        decimals,
        ratio,
    }
}

/// The table, in the order it prints.
#[rustfmt::skip]
pub const METRICS: [Metric; 38] = [
    m("qos0_throughput", "QoS 0 end to end, {qos0} msgs", "msg/s", Higher, 0, ToRaw),
    m("qos0_throughput_unbatched", "  raw limit with one write per message", "msg/s", Neither, 0, Ratio::None),
    m("qos0_throughput_batched_1k", "  umqtt-simple batch_qos0, 1 KiB tx buffer", "msg/s", Neither, 0, ToRawOf("qos0_throughput")),
    m("qos0_throughput_batched_16k", "  umqtt-simple batch_qos0, 16 KiB tx buffer", "msg/s", Neither, 0, ToRawOf("qos0_throughput")),
    m("qos0_publisher_cpu", "QoS 0 publisher CPU per 100 000 msgs", "s", Lower, 3, ToRaw),
    m("qos0_publisher_cpu_unbatched", "  raw limit with one write per message", "s", Neither, 3, Ratio::None),
    m("qos0_publisher_cpu_batched_1k", "  umqtt-simple batch_qos0, 1 KiB tx buffer", "s", Neither, 3, ToRawOf("qos0_publisher_cpu")),
    m("qos0_publisher_cpu_batched_16k", "  umqtt-simple batch_qos0, 16 KiB tx buffer", "s", Neither, 3, ToRawOf("qos0_publisher_cpu")),
    m("qos1_throughput", "QoS 1 one at a time, {qos1} msgs", "msg/s", Higher, 0, ToRaw),
    m("qos1_window_throughput", "QoS 1 window {window}, {qos1_window} msgs", "msg/s", Higher, 0, ToRaw),
    m("slow_window1_throughput", "slow link (25 ms each way): QoS 1 window 1, {slow_1} msgs", "msg/s", Neither, 2, ToRaw),
    m("slow_window_throughput", "  same link, QoS 1 window {window}, {slow_window} msgs", "msg/s", Neither, 2, ToRaw),
    m("round_trip_median", "round trip median, {rtt} samples", "µs", Lower, 1, ToRaw),
    m("round_trip_p99", "round trip p99", "µs", Lower, 1, ToRaw),
    m("idle_cpu", "idle CPU, {idle} s blocked, keepalive {keepalive} s", "%", Lower, 3, ToRaw),
    m("idle_pings", "  PINGREQs sent while idle", "count", Neither, 0, Ratio::None),
    m("heap_allocations", "heap allocations after connect (3 000 msgs)", "count", Lower, 0, Ratio::None),
    m("heap_bytes", "  bytes allocated after connect", "bytes", Lower, 0, Ratio::None),
    m("client_size", "size_of client (rumqttc: Client + Connection)", "bytes", Lower, 0, Ratio::None),
    m("client_buffers", "  buffers the client borrows (tx + rx)", "bytes", Neither, 0, Ratio::None),
    m("heap_held_after_connect", "  heap held once connected", "bytes", Lower, 0, Ratio::None),
    m("memory_total", "  memory of a connected client, total", "bytes", Lower, 0, Ratio::None),
    m("code_size_text", "machine code, no_std staticlib, opt-level s", "bytes", Lower, 0, Ratio::None),
    m("code_size_rodata", "  read-only data, same staticlib", "bytes", Lower, 0, Ratio::None),
    m("code_size_tls_text", "machine code with the TLS stack, same build", "bytes", Lower, 0, Ratio::None),
    m("code_size_tls_rodata", "  read-only data with the TLS stack", "bytes", Lower, 0, Ratio::None),
    m("tls_connect", "TLS embedded-tls: TCP + handshake + CONNACK, median of {connects}", "ms", Lower, 2, ToRumqttc),
    m("tls_qos1_throughput", "TLS embedded-tls: QoS 1 one at a time, {qos1} msgs", "msg/s", Higher, 0, ToRumqttc),
    m("tls_round_trip_median", "TLS embedded-tls: round trip median, {rtt} samples", "µs", Lower, 1, ToRumqttc),
    m("tls_round_trip_p99", "TLS embedded-tls: round trip p99", "µs", Lower, 1, ToRumqttc),
    m("tls_heap_held", "  heap held once connected (stack + session)", "bytes", Lower, 0, Ratio::None),
    m("tls_heap_allocations", "  heap allocations per QoS 1 msg after connect", "count", Lower, 1, Ratio::None),
    m("tls_rustls_connect", "TLS rustls engine: TCP + handshake + CONNACK, median of {connects}", "ms", Lower, 2, ToRumqttc),
    m("tls_rustls_qos1_throughput", "TLS rustls engine: QoS 1 one at a time, {qos1} msgs", "msg/s", Higher, 0, ToRumqttc),
    m("tls_rustls_round_trip_median", "TLS rustls engine: round trip median, {rtt} samples", "µs", Lower, 1, ToRumqttc),
    m("tls_rustls_round_trip_p99", "TLS rustls engine: round trip p99", "µs", Lower, 1, ToRumqttc),
    m("tls_rustls_heap_held", "  heap held once connected (stack + session)", "bytes", Lower, 0, Ratio::None),
    m("tls_rustls_heap_allocations", "  heap allocations per QoS 1 msg after connect", "count", Lower, 1, Ratio::None),
];

impl Metric {
    /// The label with the run's counts and durations filled in.
    pub fn label(&self, config: &Config) -> String {
        let thousands = |n: usize| fmt_num(n as f64, 0);
        self.label
            .replace("{qos0}", &thousands(config.qos0))
            .replace("{qos1}", &thousands(config.qos1))
            .replace("{qos1_window}", &thousands(config.qos1_window))
            .replace("{window}", &config.window.to_string())
            .replace("{slow_1}", &thousands(config.slow_messages(1)))
            .replace(
                "{slow_window}",
                &thousands(config.slow_messages(config.window)),
            )
            .replace("{rtt}", &thousands(config.rtt))
            .replace("{idle}", &config.idle.as_secs().to_string())
            .replace("{keepalive}", &config.keepalive_s.to_string())
            .replace("{connects}", &thousands(config.tls_connects()))
    }

    /// `who`'s figure over the raw limit's (TLS rows: umqtt-simple's over
    /// rumqttc's), where a ratio means something.
    pub fn ratio(&self, results: &Results, who: Who) -> Option<f64> {
        let (baseline, of) = match self.ratio {
            Ratio::None => return None,
            Ratio::ToRaw => (self.id, Who::Raw),
            Ratio::ToRawOf(id) => (id, Who::Raw),
            Ratio::ToRumqttc if who == Who::Umqtt => (self.id, Who::Rumqttc),
            Ratio::ToRumqttc => return None,
        };
        let base = results.get(baseline, of)?;
        let value = results.get(self.id, who)?;
        (base != 0.0).then(|| value / base)
    }

    /// What the ratio in JSON is called.
    pub fn ratio_name(&self) -> &'static str {
        match self.ratio {
            Ratio::ToRumqttc => "ratio_to_rumqttc",
            _ => "ratio_to_raw",
        }
    }
}

/// A bound a figure must keep.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// At least this much.
    AtLeast(f64),
    /// At most this much.
    AtMost(f64),
    /// Less than this.
    Below(f64),
}

impl Bound {
    /// Whether `x` keeps the bound.
    fn holds(self, x: f64) -> bool {
        match self {
            Bound::AtLeast(b) => x >= b,
            Bound::AtMost(b) => x <= b,
            Bound::Below(b) => x < b,
        }
    }
}

/// How a target reads umqtt-simple's figures, and how its line is worded.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// umqtt-simple's `id` over the raw limit's `raw` within `bound`:
    /// "`what`: 0.950 of raw (target ≥ 0.95)".
    RatioToRaw {
        /// What the line names.
        what: &'static str,
        /// umqtt-simple's metric.
        id: &'static str,
        /// The raw limit's metric.
        raw: &'static str,
        /// The bound on the ratio.
        bound: Bound,
    },
    /// For every metric with a better direction, umqtt-simple ahead of
    /// rumqttc: "ahead of rumqttc: label: figure vs figure unit".
    AheadOfRumqttc,
    /// umqtt-simple's `id` alone within `bound`: "`what`: figure`suffix`"
    /// (with `decimals`, or as the plain number).
    Own {
        /// What the line names.
        what: &'static str,
        /// umqtt-simple's metric.
        id: &'static str,
        /// The bound on the figure.
        bound: Bound,
        /// Decimals shown (`None`: the number as Rust writes it).
        decimals: Option<usize>,
        /// Written after the figure (its unit).
        suffix: &'static str,
    },
    /// umqtt-simple's `id` at least `factor` times rumqttc's: "`what`:
    /// 0.998 of rumqttc's (target ≥ 0.99)".
    AtLeastRumqttc {
        /// What the line names.
        what: &'static str,
        /// The metric, umqtt-simple's and rumqttc's.
        id: &'static str,
        /// umqtt-simple's figure must be at least this many times rumqttc's.
        factor: f64,
    },
    /// umqtt-simple's `id` at most `factor` times `who`'s `other`:
    /// "`what`: 0.100 s vs 0.200 s", with `times` also "(0.5 times)".
    Factor {
        /// What the line names.
        what: &'static str,
        /// umqtt-simple's metric.
        id: &'static str,
        /// The client compared with.
        who: Who,
        /// Its metric.
        other: &'static str,
        /// umqtt-simple's figure may be at most this many times the other.
        factor: f64,
        /// Whether the line also says how many times it is.
        times: bool,
    },
}

/// The targets of issues 5 and 16, in the order their lines print.
pub const TARGETS: [Check; 13] = [
    Check::RatioToRaw {
        what: "QoS 1 msg/s",
        id: "qos1_throughput",
        raw: "qos1_throughput",
        bound: Bound::AtLeast(0.95),
    },
    Check::RatioToRaw {
        what: "round trip median",
        id: "round_trip_median",
        raw: "round_trip_median",
        bound: Bound::AtMost(1.05),
    },
    Check::RatioToRaw {
        what: "round trip p99",
        id: "round_trip_p99",
        raw: "round_trip_p99",
        bound: Bound::AtMost(1.05),
    },
    Check::RatioToRaw {
        what: "QoS 0 end to end",
        id: "qos0_throughput",
        raw: "qos0_throughput",
        bound: Bound::AtLeast(0.90),
    },
    // The batched mode is the one for streams: the same target, against the
    // raw limit's batched writes.
    Check::RatioToRaw {
        what: "QoS 0 end to end, batch_qos0 with 1 KiB tx",
        id: "qos0_throughput_batched_1k",
        raw: "qos0_throughput",
        bound: Bound::AtLeast(0.90),
    },
    Check::RatioToRaw {
        what: "QoS 0 end to end, batch_qos0 with 16 KiB tx",
        id: "qos0_throughput_batched_16k",
        raw: "qos0_throughput",
        bound: Bound::AtLeast(0.90),
    },
    Check::AheadOfRumqttc,
    // Issue 16: with the same window, at least rumqttc's rate. On loopback
    // the "ahead of rumqttc" line says it; on the slow link every client is
    // at the link's limit (window over round trip), where "ahead" would be
    // noise: within 1 % of rumqttc's.
    Check::AtLeastRumqttc {
        what: "slow link, window 1",
        id: "slow_window1_throughput",
        factor: 0.99,
    },
    Check::AtLeastRumqttc {
        what: "slow link, the window",
        id: "slow_window_throughput",
        factor: 0.99,
    },
    Check::Own {
        what: "zero allocations after connect",
        id: "heap_allocations",
        bound: Bound::AtMost(0.0),
        decimals: None,
        suffix: "",
    },
    Check::Own {
        what: "idle CPU under 1 %",
        id: "idle_cpu",
        bound: Bound::Below(1.0),
        decimals: Some(3),
        suffix: " %",
    },
    Check::Factor {
        what: "publisher CPU at most half of rumqttc's",
        id: "qos0_publisher_cpu",
        who: Who::Rumqttc,
        other: "qos0_publisher_cpu",
        factor: 0.5,
        times: false,
    },
    // "Within a small factor" of the raw limit's batched writes, read as at
    // most ten times its CPU, with a transmit buffer of 16 KiB (the raw limit
    // writes 64 KiB at a time; with 1 KiB a batch is eleven messages).
    Check::Factor {
        what: "batched publisher CPU (16 KiB tx) within 10 times raw's batched writes",
        id: "qos0_publisher_cpu_batched_16k",
        who: Who::Raw,
        other: "qos0_publisher_cpu",
        factor: 10.0,
        times: true,
    },
];

/// One verdict per target whose figures were measured: met or not, and its
/// line.
pub fn verdicts(results: &Results, config: &Config) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for check in &TARGETS {
        match *check {
            Check::AheadOfRumqttc => out.extend(ahead_of_rumqttc(results, config)),
            check => out.extend(verdict(results, check)),
        }
    }
    out
}

/// The verdict of one target other than [`Check::AheadOfRumqttc`].
fn verdict(results: &Results, check: Check) -> Option<(bool, String)> {
    let u = |id: &str| results.get(id, Who::Umqtt);
    match check {
        Check::RatioToRaw {
            what,
            id,
            raw,
            bound,
        } => {
            let x = u(id)? / results.get(raw, Who::Raw)?;
            let want = match bound {
                Bound::AtLeast(b) => format!("≥ {b:.2}"),
                Bound::AtMost(b) => format!("≤ {b:.2}"),
                Bound::Below(b) => format!("< {b:.2}"),
            };
            Some((
                bound.holds(x),
                format!("{what}: {x:.3} of raw (target {want})"),
            ))
        }
        Check::Own {
            what,
            id,
            bound,
            decimals,
            suffix,
        } => {
            let v = u(id)?;
            let text = match decimals {
                Some(d) => format!("{v:.d$}"),
                None => format!("{v}"),
            };
            Some((bound.holds(v), format!("{what}: {text}{suffix}")))
        }
        Check::AtLeastRumqttc { what, id, factor } => {
            let x = u(id)? / results.get(id, Who::Rumqttc)?;
            Some((
                x >= factor,
                format!("{what}: {x:.3} of rumqttc's rate (target ≥ {factor:.2})"),
            ))
        }
        Check::Factor {
            what,
            id,
            who,
            other,
            factor,
            times,
        } => {
            let (v, o) = (u(id)?, results.get(other, who)?);
            let mut text = format!("{what}: {v:.3} s vs {o:.3} s");
            if times {
                let _ = write!(text, " ({:.1} times)", v / o);
            }
            Some((v <= o * factor, text))
        }
        Check::AheadOfRumqttc => None,
    }
}

/// "Ahead of rumqttc" for every metric with a better direction that both
/// measured, except the TLS rows (issue 5's targets are for the plain
/// client; the TLS rows carry their ratio to rumqttc instead).
fn ahead_of_rumqttc(results: &Results, config: &Config) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for metric in METRICS.iter().filter(|m| m.ratio != ToRumqttc) {
        let (Some(u), Some(q)) = (
            results.get(metric.id, Who::Umqtt),
            results.get(metric.id, Who::Rumqttc),
        ) else {
            continue;
        };
        let ahead = match metric.better {
            Better::Higher => u > q,
            Better::Lower => u < q || (u == 0.0 && q == 0.0),
            Better::Neither => continue,
        };
        out.push((
            ahead,
            format!(
                "ahead of rumqttc: {}: {} vs {} {}",
                metric.label(config).trim(),
                fmt_num(u, metric.decimals),
                fmt_num(q, metric.decimals),
                metric.unit
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ratios_name_known_metrics() {
        for (i, a) in METRICS.iter().enumerate() {
            assert!(METRICS[i + 1..].iter().all(|b| b.id != a.id), "{}", a.id);
            if let Ratio::ToRawOf(id) = a.ratio {
                assert!(METRICS.iter().any(|b| b.id == id), "{id}");
            }
        }
    }

    #[test]
    fn targets_name_known_metrics() {
        let known = |id: &str| METRICS.iter().any(|m| m.id == id);
        for check in &TARGETS {
            match *check {
                Check::RatioToRaw { id, raw, .. } => assert!(known(id) && known(raw)),
                Check::AtLeastRumqttc { id, .. } => assert!(known(id)),
                Check::Own { id, .. } => assert!(known(id)),
                Check::Factor { id, other, .. } => assert!(known(id) && known(other)),
                Check::AheadOfRumqttc => {}
            }
        }
    }
}

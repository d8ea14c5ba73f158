//! Replays inputs on stable, without libFuzzer, printing what each step did:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example trace -- client fuzz/artifacts/client/crash-…
//! cargo run --manifest-path fuzz/Cargo.toml --example trace -- decode FILE…
//! ```
//!
//! A check that fails panics here just as it does under the fuzzer.

use std::{env, fs};

use umqtt_fuzz::Trace;

fn main() {
    let mut args = env::args().skip(1);
    let target = args.next().unwrap_or_default();
    for path in args {
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        println!("== {path} ({} bytes): {hex}", data.len());
        let mut trace = Trace::keeping();
        match target.as_str() {
            "client" => umqtt_fuzz::client::run(&data, &mut trace),
            "robust" => umqtt_fuzz::robust::run(&data, &mut trace),
            "decode" => {
                let decoded = umqtt_simple::packet::Packet::decode(&data);
                println!("{decoded:?}");
                umqtt_fuzz::decode::check(&data);
            }
            other => panic!("unknown target {other:?}: client, robust or decode"),
        }
    }
}

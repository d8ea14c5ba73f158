//! Replays inputs on stable, without libFuzzer, printing what each step did:
//!
//! ```text
//! cargo run -p umqtt-fuzz-harness --example trace -- client fuzz/artifacts/client/crash-…
//! cargo run -p umqtt-fuzz-harness --example trace -- decode FILE…
//! cargo run -p umqtt-fuzz-harness --example trace -- window seed:NAME
//! ```
//!
//! `seed:NAME` replays the target's seed of that name. A check that fails
//! panics here just as it does under the fuzzer.

use std::{env, fs};

use umqtt_fuzz_harness::Trace;
use umqtt_fuzz_harness::seeds::targets;

fn main() {
    let mut args = env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let Some((_, seeds, run)) = targets().into_iter().find(|(name, _, _)| *name == target) else {
        let names: Vec<_> = targets().into_iter().map(|(name, _, _)| name).collect();
        panic!("unknown target {target:?}: one of {names:?}");
    };
    for path in args {
        let data = match path.strip_prefix("seed:") {
            Some(name) => seeds
                .iter()
                .find(|(seed, _)| *seed == name)
                .unwrap_or_else(|| panic!("no seed {name}"))
                .1
                .clone(),
            None => fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        };
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        println!("== {path} ({} bytes): {hex}", data.len());
        if target == "decode" {
            println!("{:?}", umqtt_simple::packet::Packet::decode(&data));
        }
        run(&data, &mut Trace::keeping());
    }
}

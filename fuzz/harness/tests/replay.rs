//! Every fuzz target's oracle over its seeds and over the committed
//! regression inputs (fuzz/regressions/TARGET/*), on the stable toolchain:
//! a change of behaviour the oracles do not know fails here, in
//! `cargo test --workspace`, instead of waiting for the next fuzz run.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use umqtt_fuzz_harness::Trace;
use umqtt_fuzz_harness::seeds::{Runner, targets};

/// Runs every input, then fails naming each that failed (not just the first).
fn replay(target: &str, run: Runner, inputs: Vec<(String, Vec<u8>)>) {
    let mut failed = Vec::new();
    for (name, input) in &inputs {
        let outcome = catch_unwind(AssertUnwindSafe(|| run(input, &mut Trace::from_env())));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{target}/{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "inputs failing their oracle:\n{}",
        failed.join("\n")
    );
}

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../regressions")
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut inputs: Vec<_> = entries
        .map(|entry| {
            let path = entry.expect("a readable regressions folder").path();
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                format!(
                    "regressions/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                bytes,
            )
        })
        .collect();
    inputs.sort();
    inputs
}

fn seeds_and_regressions(target: &str) {
    let (_, seeds, run) = targets()
        .into_iter()
        .find(|(name, _, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let mut inputs: Vec<_> = seeds
        .into_iter()
        .map(|(name, bytes)| (format!("seed {name}"), bytes))
        .collect();
    inputs.extend(regressions(target));
    replay(target, run, inputs);
}

#[test]
fn decode_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("decode");
}

#[test]
fn client_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("client");
}

#[test]
fn robust_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("robust");
}

#[test]
fn window_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("window");
}

#[test]
fn async_client_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("async_client");
}

#[test]
fn outbox_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("outbox");
}

#[test]
fn async_outbox_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("async_outbox");
}

#[test]
fn outbox_file_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("outbox_file");
}

#[test]
fn outbox_record_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("outbox_record");
}

#[test]
fn tls_oracle_passes_its_seeds_and_regressions() {
    seeds_and_regressions("tls");
}

#[test]
fn every_regressions_folder_names_a_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../regressions");
    let names: Vec<_> = targets().into_iter().map(|(name, _, _)| name).collect();
    for entry in fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let name = entry.expect("readable").file_name();
        let name = name.to_string_lossy();
        assert!(
            names.contains(&&*name) || name.starts_with('.') || name == "README.md",
            "fuzz/regressions/{name} is no target's (targets: {names:?})"
        );
    }
}

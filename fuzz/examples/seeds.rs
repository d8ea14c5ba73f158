//! Writes the seed inputs to `seeds/TARGET/NAME` (next to Cargo.toml), for
//! `run.sh` to hand to libFuzzer. Run from anywhere:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let targets = [
        ("decode", umqtt_fuzz::seeds::decode()),
        ("client", umqtt_fuzz::seeds::client()),
        ("robust", umqtt_fuzz::seeds::client()),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes)?;
        }
    }
    println!("seeds written to {}", root.display());
    Ok(())
}

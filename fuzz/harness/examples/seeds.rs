//! Writes the seed inputs to `fuzz/seeds/TARGET/NAME`, for `run.sh` to hand
//! to libFuzzer. Run from anywhere:
//! `cargo run -p umqtt-fuzz-harness --example seeds`.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    for (target, seeds, _) in umqtt_fuzz_harness::seeds::targets() {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes)?;
        }
    }
    println!("seeds written to {}", root.display());
    Ok(())
}

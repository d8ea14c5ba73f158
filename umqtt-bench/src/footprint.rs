//! Machine-code size of umqtt-simple in a no_std staticlib, without and with
//! the TLS stack.
//!
//! Method: `nostd-check/` is a `#![no_std]` staticlib (panic = "abort",
//! opt-level "s", fat LTO, one codegen unit) whose exported function
//! connects, subscribes, publishes, waits for a message and disconnects
//! through a stack whose socket calls go to C functions: built with feature
//! `plain` alone, over that stack directly (`umqtt_demo`); built with feature
//! `tls` alone, the same session over `TlsStack` on that stack
//! (`umqtt_tls_demo`, the device's random generator from C too). LTO keeps only what
//! that function reaches, in one object file; `compiler_builtins` (memcpy and
//! friends, which a C toolchain supplies anyway) stays in objects of its own
//! (Rust ones and C ones from compiler-rt) and is left out. The same build of `footprint-baseline/` (same profile, an
//! exported function that only calls the C functions) gives what remains with
//! no client at all. The client's size is the difference of the two:
//! executable sections (`.text*`) and read-only data (`.rodata*`,
//! `.data.rel.ro*`; unwind tables, `.eh_frame`, are left out since embedded
//! targets built with panic = "abort" do not keep them).
//!
//! The sizes come from the section headers of the archive members (a small
//! `ar` and ELF64 reader below, so no tool is needed). They are x86-64 code:
//! the only target installed here; Thumb-2 code for a Cortex-M is usually
//! smaller.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Res;

/// Sizes of one staticlib's Rust objects (compiler_builtins left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeSize {
    /// Executable sections.
    pub text: u64,
    /// Read-only data.
    pub rodata: u64,
}

/// The client's size: the nostd-check staticlib less the baseline.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// The nostd-check staticlib with feature `plain`: the client and the C
    /// socket calls.
    pub with_client: CodeSize,
    /// The nostd-check staticlib with feature `tls`: the client, the TLS
    /// stack and the C socket calls (when measured).
    pub with_tls: Option<CodeSize>,
    /// The footprint-baseline staticlib: the C socket calls alone.
    pub baseline: CodeSize,
}

impl Footprint {
    /// Code bytes the client adds.
    pub fn text(&self) -> u64 {
        self.with_client.text.saturating_sub(self.baseline.text)
    }

    /// Read-only data bytes the client adds.
    pub fn rodata(&self) -> u64 {
        self.with_client.rodata.saturating_sub(self.baseline.rodata)
    }

    /// Code and read-only data bytes the client and the TLS stack add.
    pub fn with_tls(&self) -> Option<CodeSize> {
        self.with_tls.map(|t| CodeSize {
            text: t.text.saturating_sub(self.baseline.text),
            rodata: t.rodata.saturating_sub(self.baseline.rodata),
        })
    }
}

/// The workspace root (this crate's parent).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Builds `manifest` (release, with the cargo arguments `features`) into
/// `target_dir` and measures the staticlib `lib_name` (before another build
/// of the same crate replaces it).
fn build(manifest: &Path, features: &[&str], target_dir: &Path, lib_name: &str) -> Res<CodeSize> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .arg("--release")
        .arg("--quiet")
        .args(features)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .map_err(|e| format!("run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build of {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let lib = target_dir.join("release").join(lib_name);
    archive_size(&std::fs::read(&lib).map_err(|e| format!("read {}: {e}", lib.display()))?)
}

/// Builds the staticlibs (nostd-check with TLS too if `tls`) and measures
/// them.
pub fn measure(tls: bool) -> Res<Footprint> {
    let root = root();
    let target_dir = root.join("target").join("umqtt-bench-footprint");
    let check = root.join("nostd-check").join("Cargo.toml");
    let check_lib = "libumqtt_nostd_check.a";
    let only = |feature| ["--no-default-features", "--features", feature];
    let with_client = build(&check, &only("plain"), &target_dir, check_lib)?;
    let with_tls = if tls {
        Some(build(&check, &only("tls"), &target_dir, check_lib)?)
    } else {
        None
    };
    let baseline = build(
        &root
            .join("umqtt-bench")
            .join("footprint-baseline")
            .join("Cargo.toml"),
        &[],
        &target_dir,
        "libumqtt_footprint_baseline.a",
    )?;
    Ok(Footprint {
        with_client,
        with_tls,
        baseline,
    })
}

/// Sums the sections of the Rust objects in an `ar` archive, except
/// compiler_builtins' (and the C objects it brings).
pub fn archive_size(archive: &[u8]) -> Res<CodeSize> {
    let body = archive
        .strip_prefix(b"!<arch>\n")
        .ok_or("not an ar archive")?;
    let mut total = CodeSize::default();
    let mut long_names: &[u8] = &[];
    let mut pos = 0;
    while pos + 60 <= body.len() {
        let header = &body[pos..pos + 60];
        let name_field = trim(&header[..16]);
        let size: usize = std::str::from_utf8(trim(&header[48..58]))
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("bad ar member size")?;
        let data = body
            .get(pos + 60..pos + 60 + size)
            .ok_or("truncated ar member")?;
        pos += 60 + size + (size & 1);
        let name: &[u8] = match name_field {
            b"/" | b"/SYM64/" => continue,
            b"//" => {
                long_names = data;
                continue;
            }
            n if n.len() > 1 && n[0] == b'/' => {
                let offset: usize = std::str::from_utf8(&n[1..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad ar long name")?;
                let rest = long_names.get(offset..).ok_or("bad ar long name")?;
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                rest[..end].strip_suffix(b"/").unwrap_or(&rest[..end])
            }
            n => n.strip_suffix(b"/").unwrap_or(n),
        };
        // Rust's objects end in `.rcgu.o`; compiler_builtins' Rust objects
        // start with its name, and its C objects (from compiler-rt) are
        // `<hash>-<name>.o`.
        let rust_object = name.ends_with(b".rcgu.o") && !name.starts_with(b"compiler_builtins");
        if !rust_object || !data.starts_with(b"\x7fELF") {
            continue;
        }
        let size = elf_size(data)?;
        total.text += size.text;
        total.rodata += size.rodata;
    }
    Ok(total)
}

fn trim(field: &[u8]) -> &[u8] {
    let end = field.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &field[..end]
}

/// The `N` bytes of `d` at `at`.
fn bytes_at<const N: usize>(d: &[u8], at: usize) -> Res<[u8; N]> {
    d.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "ELF truncated".into())
}

fn u16_at(d: &[u8], at: usize) -> Res<u16> {
    bytes_at(d, at).map(u16::from_le_bytes)
}

fn u32_at(d: &[u8], at: usize) -> Res<u32> {
    bytes_at(d, at).map(u32::from_le_bytes)
}

fn u64_at(d: &[u8], at: usize) -> Res<u64> {
    bytes_at(d, at).map(u64::from_le_bytes)
}

/// Code and read-only data of one ELF64 little-endian relocatable object.
fn elf_size(d: &[u8]) -> Res<CodeSize> {
    const SHF_WRITE: u64 = 0x1;
    const SHF_ALLOC: u64 = 0x2;
    const SHF_EXECINSTR: u64 = 0x4;
    const SHT_NOBITS: u32 = 8;
    if d.get(4) != Some(&2) || d.get(5) != Some(&1) {
        return Err("only 64-bit little-endian ELF objects are measured".into());
    }
    let shoff = usize::try_from(u64_at(d, 0x28)?).map_err(|e| e.to_string())?;
    let shentsize = usize::from(u16_at(d, 0x3a)?);
    let shnum = usize::from(u16_at(d, 0x3c)?);
    let shstrndx = usize::from(u16_at(d, 0x3e)?);
    let section = |i: usize| shoff + i * shentsize;
    let strtab =
        usize::try_from(u64_at(d, section(shstrndx) + 0x18)?).map_err(|e| e.to_string())?;
    let mut size = CodeSize::default();
    for i in 0..shnum {
        let s = section(i);
        let name_at = strtab + u32_at(d, s)? as usize;
        let name = d.get(name_at..).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        let kind = u32_at(d, s + 4)?;
        let flags = u64_at(d, s + 8)?;
        let bytes = u64_at(d, s + 0x20)?;
        if flags & SHF_ALLOC == 0 || kind == SHT_NOBITS || name.starts_with(b".eh_frame") {
            continue;
        }
        if flags & SHF_EXECINSTR != 0 {
            size.text += bytes;
        } else if flags & SHF_WRITE == 0 || name.starts_with(b".data.rel.ro") {
            size.rodata += bytes;
        }
    }
    Ok(size)
}

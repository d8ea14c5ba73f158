//! The fuzz harnesses (scripts, oracles, seeds), as a library of the root
//! workspace with no libFuzzer in it: each cargo-fuzz target in `fuzz/` is
//! one line calling in here, an input can be replayed with a readable trace
//! (`UMQTT_FUZZ_TRACE=1`, or the `trace` example), and `tests/replay.rs`
//! runs every target's seeds and committed regression inputs in
//! `cargo test` (see fuzz/README.md).

pub mod asynch;
pub mod client;
pub mod decode;
pub mod outbox_file;
pub mod outbox_record;
pub mod robust;
pub mod script;
pub mod seeds;
pub mod tls;
pub mod wire;

/// Notes of what an input made the client do, kept only when asked for
/// (formatting every step would slow fuzzing down).
#[derive(Debug, Default)]
pub struct Trace(Option<Vec<String>>);

impl Trace {
    /// A trace that keeps notes when `UMQTT_FUZZ_TRACE` is set.
    pub fn from_env() -> Self {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let on = *ON.get_or_init(|| std::env::var_os("UMQTT_FUZZ_TRACE").is_some());
        Trace(on.then(Vec::new))
    }

    /// A trace that keeps notes.
    pub fn keeping() -> Self {
        Trace(Some(Vec::new()))
    }

    /// Keeps the note `note` makes, if notes are kept.
    pub fn note(&mut self, note: impl FnOnce() -> String) {
        if let Some(notes) = self.0.as_mut() {
            let text = note();
            eprintln!("  {text}");
            notes.push(text);
        }
    }

    /// The notes kept.
    pub fn notes(&self) -> &[String] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// The value an operation returned, for the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// `()`.
    Unit,
    /// Whether a packet was handled, or "session present".
    Bool(bool),
    /// The QoS granted.
    QoS(umqtt_simple::QoS),
}

impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Unit
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

impl From<umqtt_simple::QoS> for Value {
    fn from(value: umqtt_simple::QoS) -> Self {
        Value::QoS(value)
    }
}

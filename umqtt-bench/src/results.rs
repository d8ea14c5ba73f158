//! Everything a run measured, its notes and failures, and the progress lines
//! on stderr.

use std::collections::BTreeMap;
use std::fmt::Display;

use crate::clients::Who;

/// A progress line on stderr.
pub fn progress(text: impl Display) {
    eprintln!("umqtt-bench: {text}");
}

/// Everything measured: (metric id, client) to value; no entry where a client
/// has no such figure or the measurement failed.
#[derive(Default)]
pub struct Results {
    /// The figures by (metric id, client).
    values: BTreeMap<(&'static str, Who), f64>,
    /// Notes printed under the table (failures among them).
    pub notes: Vec<String>,
    /// Measurements that could not be made.
    pub failures: usize,
}

impl Results {
    /// Records the figure of metric `id` for `who`.
    pub fn set(&mut self, id: &'static str, who: Who, value: f64) {
        self.values.insert((id, who), value);
    }

    /// The figure of metric `id` for `who`, if measured.
    pub fn get(&self, id: &str, who: Who) -> Option<f64> {
        self.values
            .iter()
            .find(|((i, w), _)| *i == id && *w == who)
            .map(|(_, v)| *v)
    }

    /// A note: on stderr now and under the table at the end.
    pub fn note(&mut self, text: String) {
        progress(&text);
        self.notes.push(text);
    }

    /// A measurement that could not be made: noted, and the exit status
    /// becomes 1 (CI checks that the program keeps working, not its figures).
    pub fn fail(&mut self, text: String) {
        self.failures += 1;
        self.note(format!("FAILED: {text}"));
    }
}

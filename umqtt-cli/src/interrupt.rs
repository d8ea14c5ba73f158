//! Ctrl-C (SIGINT) and SIGTERM, as mosquitto_sub and mosquitto_pub take
//! them: the first asks the running loop to stop, so umqtt disconnects
//! cleanly and the broker discards the last will; a second exits at once
//! (status 130), so a dead connection cannot hold the exit up.

use std::sync::atomic::{AtomicU32, Ordering};

/// Signals received so far.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Exit status after a second signal: 128 + SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// Installs the handler (once, at start). A failure is reported on stderr
/// and umqtt runs on without it: signals then end it the default way.
pub fn install() {
    let installed = ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(INTERRUPTED);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not disconnect cleanly: {e}");
    }
}

/// Whether a signal asked umqtt to stop.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

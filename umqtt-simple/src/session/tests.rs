//! The core on its own: bytes and times in, events and bytes out.

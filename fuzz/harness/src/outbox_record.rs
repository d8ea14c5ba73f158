//! The `outbox_record` target: the checksummed frame every persistent
//! outbox record is written in (`umqtt_robust::outbox::{frame, unframe,
//! checksum}`; the file outbox's log, and the record layout a flash outbox
//! such as umqtt-robust/tests/flash_outbox.rs builds on its CRC-32).
//!
//! Input: byte 0 which byte of the frame to change, byte 1 the XOR to
//! change it with, the rest both a log to walk and a body to frame.
//!
//! Checks: walking any bytes frame by frame (as a log's replay does) never
//! panics, every frame found is `body + 8` bytes long, lies within the
//! bytes, and frames again to the very same bytes; the walk ends exactly at
//! the end of the bytes or at a torn frame. Framing the input gives a frame
//! that unframes to the same body and length; changing any one byte of it
//! after the length field (body or checksum) makes it torn (CRC-32 finds
//! every error of up to 32 bits).

use umqtt_robust::outbox::{FRAME_OVERHEAD, Unframed, frame, unframe};

use crate::Trace;

/// Runs one input; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let rest = data.get(2..).unwrap_or_default();

    let mut at = 0;
    let mut framed = vec![0u8; rest.len() + FRAME_OVERHEAD];
    loop {
        let bytes = rest.get(at..).unwrap_or_default();
        match unframe(bytes) {
            Unframed::Frame(body, len) => {
                trace.note(|| format!("frame of {len} bytes at {at}"));
                assert_eq!(len, body.len() + FRAME_OVERHEAD, "frame length");
                assert!(len <= bytes.len(), "a frame within the bytes");
                let n = frame(&mut framed, body).expect("a body framed again fits");
                assert_eq!(
                    &framed[..n],
                    &bytes[..len],
                    "a frame frames again to itself"
                );
                at += len;
            }
            Unframed::End => {
                assert_eq!(at, rest.len(), "End only at the end");
                break;
            }
            Unframed::Torn => {
                assert!(at < rest.len(), "Torn with bytes left");
                break;
            }
        }
    }

    let n = frame(&mut framed, rest).expect("room for the frame");
    assert_eq!(n, rest.len() + FRAME_OVERHEAD);
    let whole = &mut framed[..n];
    assert_eq!(
        unframe(whole),
        Unframed::Frame(rest, n),
        "a frame reads back"
    );
    let (flip_at, flip) = (byte(0), byte(1));
    if flip != 0 {
        let i = 4 + usize::from(flip_at) % (n - 4);
        whole[i] ^= flip;
        assert_eq!(
            unframe(whole),
            Unframed::Torn,
            "byte {i} of a {n}-byte frame changed by {flip:#04x} went unnoticed"
        );
    }
}

//! Starting inputs: one per protocol path, so the fuzzer mutates sessions
//! that already reach every packet type. `cargo run --example seeds` writes
//! them to `seeds/TARGET/`; `run.sh` passes that folder to libFuzzer after
//! the corpus. Each one also runs as a test of the harness (`cargo test`).

use umqtt_simple::packet::{
    Connect, LastWill, Packet, Publish, QoS, SubAck, Subscribe, SubscribeFilters, Unsubscribe,
    UnsubscribeFilters,
};

use crate::script::{build, build_extended};

/// A QoS 1 PUBLISH to `t/x` with packet id `id` and `payload`.
fn publish_qos1(id: u16, payload: &[u8]) -> Vec<u8> {
    let packet = Publish::new(b"t/x", payload, QoS::AtLeastOnce).with_packet_id(id);
    encode(Packet::Publish(packet))
}

fn encode(packet: Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len()];
    let n = packet.encode(&mut buf).expect("seed packets are valid");
    buf.truncate(n);
    buf
}

/// Seeds of the `decode` target: one valid packet of every type.
pub fn decode() -> Vec<(&'static str, Vec<u8>)> {
    let will = LastWill {
        topic: b"w/t",
        message: b"bye",
        qos: QoS::AtLeastOnce,
        retain: true,
    };
    let connect = Connect {
        keepalive: 60,
        will: Some(will),
        username: Some(b"u"),
        password: Some(b"p"),
        ..Connect::new(b"client")
    };
    let filters = [
        (&b"a/+"[..], QoS::AtLeastOnce),
        (&b"#"[..], QoS::AtMostOnce),
    ];
    let unsub = [&b"a/+"[..]];
    let big = [b'x'; 200];
    vec![
        ("connect", encode(Packet::Connect(connect))),
        ("connect-min", encode(Packet::Connect(Connect::new(b"")))),
        ("connack", vec![0x20, 0x02, 0x01, 0x00]),
        ("publish0", b"\x30\x0a\x00\x03t/xhello".to_vec()),
        ("publish1", publish_qos1(7, b"hi")),
        ("publish-retain-dup", b"\x3b\x06\x00\x01a\x00\x09z".to_vec()),
        (
            "publish-2-byte-length",
            encode(Packet::Publish(Publish::new(b"t", &big, QoS::AtMostOnce))),
        ),
        ("puback", vec![0x40, 0x02, 0x00, 0x07]),
        (
            "subscribe",
            encode(Packet::Subscribe(Subscribe {
                packet_id: 3,
                filters: SubscribeFilters::List(&filters),
            })),
        ),
        (
            "suback",
            encode(Packet::SubAck(SubAck {
                packet_id: 3,
                return_codes: &[0x01, 0x80],
            })),
        ),
        (
            "unsubscribe",
            encode(Packet::Unsubscribe(Unsubscribe {
                packet_id: 4,
                filters: UnsubscribeFilters::List(&unsub),
            })),
        ),
        ("unsuback", vec![0xb0, 0x02, 0x00, 0x04]),
        ("pingreq", vec![0xc0, 0x00]),
        ("pingresp", vec![0xd0, 0x00]),
        ("disconnect", vec![0xe0, 0x00]),
    ]
}

/// Seeds of the `client` and `robust` targets (see `script` for the format).
pub fn client() -> Vec<(&'static str, Vec<u8>)> {
    // Op bytes: low nibble operation, bits 4-6 parameter, bit 7 "answer".
    const PUBLISH_QOS1_ANSWER: u8 = 0x81;
    const PUBLISH_QOS0_BIG: u8 = 0x70;
    const SUBSCRIBE_QOS1_ANSWER: u8 = 0x92;
    const SUBSCRIBE_MANY_ANSWER: u8 = 0x83;
    const UNSUBSCRIBE_ANSWER: u8 = 0x84;
    const WAIT_1S: u8 = 0x35;
    const WAIT_5S_PINGRESP: u8 = 0xc5;
    const CHECK: u8 = 0x06;
    const PING_ANSWER: u8 = 0x87;
    const ADVANCE_2100: u8 = 0x38;
    const CLOSE: u8 = 0x09;
    const CONNECT: u8 = 0x0a;
    const DISCONNECT: u8 = 0x0b;
    const REPUBLISH_ID_1: u8 = 0x8c;
    const BATCH_ON_FLUSH: u8 = 0x1f;
    const PUBLISH_QOS0_SMALL: u8 = 0x10;
    const FLUSH: u8 = 0x0f;
    // Buffers byte: 64-byte rx, friendly reconnects.
    const FRIENDLY_64: u8 = 0x40 | 48;

    let message = publish_qos1(9, b"hello");
    let big = publish_qos1(5, &[b'm'; 40]);
    let (big_head, big_tail) = big.split_at(12);
    vec![
        (
            "publish-qos1",
            build(0, 48, &[(PUBLISH_QOS1_ANSWER, b"\x40\x02\x00\x01")]),
        ),
        (
            "publish-qos0-two-sends",
            build(0x80, 48, &[(PUBLISH_QOS0_BIG, b"")]),
        ),
        (
            "subscribe-then-message",
            build(
                0,
                48,
                &[
                    (SUBSCRIBE_QOS1_ANSWER, b"\x90\x03\x00\x01\x01"),
                    (WAIT_1S, &message),
                    (CHECK, b""),
                ],
            ),
        ),
        (
            "subscribe-many",
            build(
                0,
                48,
                &[(SUBSCRIBE_MANY_ANSWER, b"\x90\x04\x00\x01\x01\x80")],
            ),
        ),
        (
            "unsubscribe",
            build(0, 48, &[(UNSUBSCRIBE_ANSWER, b"\xb0\x02\x00\x01")]),
        ),
        (
            "oversize-message-drained",
            build(
                0,
                0,
                &[
                    (WAIT_1S, big_head),
                    (WAIT_1S, big_tail),
                    (WAIT_1S, &message),
                ],
            ),
        ),
        (
            "keepalive-pingresp",
            build(
                0x01,
                48,
                &[(ADVANCE_2100, b""), (WAIT_5S_PINGRESP, b"\xd0\x00")],
            ),
        ),
        (
            "keepalive-no-pingresp",
            build(
                0x09,
                FRIENDLY_64,
                &[(WAIT_5S_PINGRESP, b""), (WAIT_1S, b"")],
            ),
        ),
        (
            "ping",
            build(0, 48, &[(PING_ANSWER, b"\xd0\x00"), (CHECK, b"")]),
        ),
        (
            "reconnect",
            build(
                0,
                48,
                &[
                    (CLOSE, b"\x20\x02\x01\x00"),
                    (CHECK, b""),
                    (CONNECT, b""),
                    (REPUBLISH_ID_1, b"\x40\x02\x00\x01"),
                ],
            ),
        ),
        (
            "second-connack",
            build(
                0,
                FRIENDLY_64,
                &[(CHECK, b"\x20\x02\x00\x00"), (CHECK, b"")],
            ),
        ),
        (
            "no-callback",
            build(0x40, 48, &[(WAIT_1S, &message), (DISCONNECT, b"")]),
        ),
        (
            "batched-qos0",
            build(
                0,
                FRIENDLY_64,
                &[
                    (BATCH_ON_FLUSH, b""),
                    (PUBLISH_QOS0_SMALL, b""),
                    (PUBLISH_QOS0_SMALL, b""),
                    (PUBLISH_QOS0_SMALL, b""),
                    (PUBLISH_QOS1_ANSWER, b"\x40\x02\x00\x01"),
                    (PUBLISH_QOS0_SMALL, b""),
                    (FLUSH, b""),
                    (PUBLISH_QOS0_SMALL, b""),
                    (CLOSE, b"\x20\x02\x00\x00"),
                    (FLUSH, b""),
                ],
            ),
        ),
    ]
}

/// Extra seeds of the `client` and `robust` targets: QoS 2 receive.
pub fn qos2() -> Vec<(&'static str, Vec<u8>)> {
    const FEED: u8 = 0x08; // Advance(0): the chunk is fed, no time passes
    const WAIT_500_ANSWER_PUBREC: u8 = 0xa5;
    const WAIT_1S: u8 = 0x35;
    const CHECK: u8 = 0x06;
    let qos2 = |id: u16, dup: bool| {
        let mut p = Publish::new(b"t/x", b"two", QoS::ExactlyOnce).with_packet_id(id);
        p.dup = dup;
        encode(Packet::Publish(p))
    };
    let mut twice = qos2(3, false);
    twice.extend(qos2(3, true));
    vec![
        (
            "qos2-receive-and-release",
            build(
                0,
                48,
                &[
                    (FEED, &qos2(3, false)),
                    (WAIT_500_ANSWER_PUBREC, b"\x62\x02\x00\x03"),
                    (CHECK, b""),
                ],
            ),
        ),
        (
            "qos2-duplicate-then-release",
            build(
                0,
                48,
                &[
                    (WAIT_1S, &twice),
                    (WAIT_1S, b"\x62\x02\x00\x03\x62\x02\x00\x09"),
                ],
            ),
        ),
    ]
}

/// Seeds of the `window` target (three header bytes, see `script`).
pub fn window() -> Vec<(&'static str, Vec<u8>)> {
    const PUBLISH_QOS1: u8 = 0x11;
    const FEED: u8 = 0x08;
    const FLUSH_FOR: u8 = 0x2f;
    const CLOSE: u8 = 0x09;
    const WAIT_1S: u8 = 0x35;
    let acks_out_of_order = b"\x40\x02\x00\x02\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x00\x63";
    vec![
        (
            "window-2-acks-out-of-order",
            build_extended(
                0,
                48,
                0x02,
                &[
                    (PUBLISH_QOS1, b""),
                    (PUBLISH_QOS1, b""),
                    (FEED, acks_out_of_order),
                    (PUBLISH_QOS1, b""),
                    (FLUSH_FOR, b""),
                ],
            ),
        ),
        (
            "window-4-lost-connection",
            build_extended(
                0,
                0x40 | 48,
                0x03,
                &[
                    (PUBLISH_QOS1, b""),
                    (PUBLISH_QOS1, b""),
                    (CLOSE, b""),
                    (PUBLISH_QOS1, b""),
                    (WAIT_1S, b"\x40\x02\x00\x03"),
                ],
            ),
        ),
    ]
}

/// Seeds of the `async_client` target: the `client` seeds (with an extras
/// byte of 0: no window) and the `window` seeds.
pub fn async_client() -> Seeds {
    let mut seeds: Seeds = client()
        .into_iter()
        .chain(qos2())
        .map(|(name, mut input)| {
            input.insert(2.min(input.len()), 0);
            (name, input)
        })
        .collect();
    seeds.extend(window());
    seeds
}

/// Seeds of the `outbox` target (three header bytes, see `script`).
pub fn outbox() -> Vec<(&'static str, Vec<u8>)> {
    const PUBLISH_QOS1: u8 = 0x11;
    const QUEUE: u8 = 0x1c;
    const FEED: u8 = 0x08;
    const FLUSH: u8 = 0x0f;
    const CLOSE: u8 = 0x09;
    const CHECK: u8 = 0x06;
    const PUBLISH_QOS0: u8 = 0x10;
    vec![
        (
            "outbox-window-2-resent-after-reconnect",
            build_extended(
                0,
                0x40 | 48,
                0x0a,
                &[
                    (PUBLISH_QOS1, b""),
                    (QUEUE, b""),
                    (PUBLISH_QOS1, b""),
                    (CLOSE, b"\x20\x02\x00\x00"),
                    (CHECK, b""),
                    (FEED, b"\x40\x02\x00\x02\x40\x02\x00\x01\x40\x02\x00\x01"),
                    (CHECK, b""),
                    (FLUSH, b"\x40\x02\x00\x03"),
                ],
            ),
        ),
        (
            "outbox-small-drops-oldest",
            build_extended(
                0,
                0x40 | 48,
                0x31,
                &[
                    (PUBLISH_QOS1, b""),
                    (PUBLISH_QOS0, b""),
                    (QUEUE, b""),
                    (QUEUE, b""),
                    (FEED, b"\x40\x02\x00\x01\x40\x02\x00\x05"),
                    (CHECK, b""),
                ],
            ),
        ),
    ]
}

/// Seeds of the `outbox_file` target (see `outbox_file` for the format).
pub fn outbox_file() -> Vec<(&'static str, Vec<u8>)> {
    // Kinds: 0 push QoS 0, 1 push QoS 1, 2 mark sent, 3 remove; param << 2.
    let ops = [0x0d, 0x08, 0x15, 0x02, 0x06, 0x03, 0x21, 0x0b];
    let with = |damage: [u8; 5]| {
        let mut input = vec![ops.len() as u8];
        input.extend_from_slice(&ops);
        input.extend_from_slice(&damage);
        input
    };
    vec![
        ("file-undamaged", with([0, 0, 0, 0, 0])),
        ("file-cut-in-a-record", with([30, 0, 0, 0, 0])),
        ("file-cut-in-the-header", with([3, 0, 0, 0, 0])),
        ("file-byte-changed", with([0, 0, 40, 0, 0x10])),
    ]
}

/// Seeds of the `outbox_record` target.
pub fn outbox_record() -> Vec<(&'static str, Vec<u8>)> {
    let mut log = vec![5, 0x80];
    for body in [&b"first"[..], b"", b"third body"] {
        let mut framed = vec![0u8; body.len() + umqtt_robust::outbox::FRAME_OVERHEAD];
        let n = umqtt_robust::outbox::frame(&mut framed, body).expect("room");
        log.extend_from_slice(&framed[..n]);
    }
    let mut torn = log.clone();
    torn.truncate(torn.len() - 3);
    vec![("record-log", log), ("record-torn-log", torn)]
}

/// The `tls` target's seeds: real handshakes recorded from the tests'
/// scripted TLS 1.3 server (`fuzz/tls-seeds/`, made by `cargo run -p
/// umqtt-tests --example record_tls_seeds -- fuzz/tls-seeds`), read from
/// the repository since they are too long to write out here.
pub fn tls() -> Vec<(&'static str, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tls-seeds");
    crate::tls::SEEDS
        .iter()
        .map(|&(name, _)| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("recorded TLS seed {}: {e}", path.display()));
            (name, bytes)
        })
        .collect()
}

/// Every target, by name: its seeds and the function that runs one input.
pub fn targets() -> Vec<(&'static str, Seeds, Runner)> {
    let mut clients = client();
    clients.extend(qos2());
    vec![
        ("decode", decode(), |data, _| crate::decode::check(data)),
        ("client", clients.clone(), crate::client::run),
        ("robust", clients, crate::robust::run),
        ("window", window(), crate::client::run_windowed),
        ("async_client", async_client(), crate::asynch::run),
        ("outbox", outbox(), crate::robust::run_with_outbox),
        (
            "async_outbox",
            outbox(),
            crate::asynch::run_robust_with_outbox,
        ),
        ("outbox_file", outbox_file(), crate::outbox_file::run),
        ("outbox_record", outbox_record(), crate::outbox_record::run),
        ("tls", tls(), |data, _| {
            crate::tls::check(data);
        }),
    ]
}

/// Named inputs.
pub type Seeds = Vec<(&'static str, Vec<u8>)>;

/// Runs one input of a target, panicking when a check fails.
pub type Runner = fn(&[u8], &mut crate::Trace);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trace;

    #[test]
    fn decode_seeds_pass_the_decode_checks() {
        for (name, seed) in decode() {
            assert!(
                matches!(umqtt_simple::packet::Packet::decode(&seed), Ok(Some(_))),
                "{name}"
            );
            crate::decode::check(&seed);
        }
    }

    #[test]
    fn client_seeds_pass_both_client_harnesses() {
        for (name, seed) in client() {
            let mut trace = Trace::keeping();
            crate::client::run(&seed, &mut trace);
            assert!(trace.notes().len() > 1, "{name}");
            crate::robust::run(&seed, &mut Trace::keeping());
        }
    }

    #[test]
    fn the_oversize_seed_reports_the_skipped_message_then_delivers_the_next() {
        let (_, seed) = client()
            .into_iter()
            .find(|(name, _)| *name == "oversize-message-drained")
            .unwrap();
        let mut trace = Trace::keeping();
        crate::client::run(&seed, &mut trace);
        let notes = trace.notes().join("\n");
        assert!(
            notes.contains("MessageTooLarge { size: 49, capacity: 16 }"),
            "{notes}"
        );
    }
}

//! The std stack against loopback peers.

use core::net::IpAddr;
use core::time::Duration;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::string::ToString;
use std::time::Instant;

use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind};

use super::contract::contract_tests;
use super::dns::pick;
use super::wait::{MAX_READ_TIMEOUT_MS, ReadTimeouts, SHORT_WAIT_MS, TICK_MS};
use super::*;
use crate::{Clock, Wait};
use std::thread;
use std::vec::Vec;

#[test]
fn connect_sets_nodelay_and_addresses() {
    let (_stack, socket, server) = connected();
    assert!(socket.is_connected());
    assert_eq!(socket.peer_addr(), server.local_addr().ok());
    assert_eq!(socket.local_addr(), server.peer_addr().ok());
    let stream = socket.stream.as_ref().expect("stream");
    assert!(stream.nodelay().expect("nodelay"));
}

#[test]
fn wait_returns_at_once_when_data_is_already_there_or_peer_closed() {
    let (mut stack, mut socket, mut server) = connected();
    server.write_all(b"y").expect("write");
    thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut buf = [0u8; 4];
    assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
    drop(server);
    let started = Instant::now();
    StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        other_err(stack.receive(&mut socket, &mut buf)),
        StdNetError::Closed
    );
}

#[test]
fn connected_stream_stays_blocking_and_receive_still_does_not_block() {
    let (mut stack, mut socket, _server) = connected();
    // `set_nonblocking` is never called after connect; MSG_DONTWAIT does it.
    let started = Instant::now();
    let mut buf = [0u8; 4];
    for _ in 0..100 {
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// The bytes `0, 1, .., 250, 0, 1, ..`: a stream whose order can be checked.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A peer that writes `data` in chunks of 1 to 700 bytes with short pauses
/// (so that bytes arrive while the client waits, and while it reads), then
/// keeps the connection open until the client is done.
fn trickle(mut server: TcpStream, data: Vec<u8>) -> thread::JoinHandle<TcpStream> {
    thread::spawn(move || {
        let mut at = 0;
        let mut size = 1;
        while let Some(chunk) = data.get(at..(at + size).min(data.len())) {
            if chunk.is_empty() {
                break;
            }
            server.write_all(chunk).expect("write");
            at += chunk.len();
            size = size * 7 % 701 + 1;
            thread::sleep(Duration::from_millis(1));
        }
        server
    })
}

/// Receives `len` bytes in calls with a 100-byte buffer, waiting between
/// them: after each `WouldBlock` (as the client does), or before every
/// call (`alternate`). Fails after 10 s.
fn receive_all(
    stack: &mut StdTcpStack,
    socket: &mut StdSocket,
    len: usize,
    alternate: bool,
) -> Vec<u8> {
    let mut wait = StdWait::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 100];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < len {
        assert!(Instant::now() < deadline, "only {} bytes", got.len());
        if alternate {
            wait.wait_readable(stack, socket, 2000);
        }
        match stack.receive(socket, &mut buf) {
            Ok(n) => got.extend_from_slice(buf.get(..n).expect("n <= buffer")),
            Err(nb::Error::WouldBlock) if !alternate => {
                wait.wait_readable(stack, socket, 2000);
            }
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => panic!("receive failed after {}: {e}", got.len()),
        }
    }
    got
}

#[test]
fn data_arriving_during_waits_is_received_whole_and_in_order() {
    // 10 000 bytes, far more than the stash holds, read with a buffer
    // smaller than it: stashed and directly read bytes interleave.
    for alternate in [false, true] {
        let (mut stack, mut socket, server) = connected();
        let data = pattern(10_000);
        let peer = trickle(server, data.clone());
        let got = receive_all(&mut stack, &mut socket, data.len(), alternate);
        assert!(
            got == data,
            "bytes lost or reordered (alternate: {alternate})"
        );
        let _server = peer.join().expect("peer");
        let mut buf = [0u8; 16];
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }
}

#[test]
fn receive_smaller_than_the_stashed_bytes_gets_them_in_pieces() {
    let (mut stack, mut socket, mut server) = connected();
    let data = pattern(200);
    server.write_all(&data).expect("write");
    thread::sleep(Duration::from_millis(50));
    StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
    assert_eq!(socket.stash.len(), 200, "the wait reads what arrived");
    // More bytes behind the stash: a receive that empties the stash must
    // not read them in the same call.
    server.write_all(b"next").expect("write");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(stack.receive(&mut socket, &mut []).expect("empty"), 0);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for expected in [64, 64, 64, 8] {
        let n = stack.receive(&mut socket, &mut buf).expect("stashed");
        assert_eq!(n, expected);
        got.extend_from_slice(buf.get(..n).expect("n <= buffer"));
    }
    assert_eq!(got, data);
    let n = stack
        .receive(&mut socket, &mut buf)
        .expect("from the socket");
    assert_eq!(buf.get(..n), Some(&b"next"[..]));
    assert!(matches!(
        stack.receive(&mut socket, &mut buf),
        Err(nb::Error::WouldBlock)
    ));
}

#[test]
fn end_of_file_seen_by_the_wait_is_reported_after_the_stashed_bytes() {
    let (mut stack, mut socket, mut server) = connected();
    server.write_all(b"last words").expect("write");
    drop(server);
    thread::sleep(Duration::from_millis(50));
    let mut wait = StdWait::new();
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    let error = loop {
        // Waits before every receive: the wait sees end of file as soon as
        // the stash is empty, while bytes it read are still to be handed
        // over (and returns at once while they are).
        let started = Instant::now();
        wait.wait_readable(&mut stack, &mut socket, 5000);
        assert!(started.elapsed() < Duration::from_secs(2));
        match stack.receive(&mut socket, &mut buf) {
            Ok(n) => got.extend_from_slice(buf.get(..n).expect("n <= buffer")),
            Err(nb::Error::WouldBlock) => panic!("end of file is not WouldBlock"),
            Err(nb::Error::Other(e)) => break e,
        }
    };
    assert_eq!(got, b"last words");
    assert_eq!(error, StdNetError::Closed);
    assert_eq!(
        other_err(stack.receive(&mut socket, &mut buf)),
        StdNetError::Closed
    );
}

#[cfg(target_os = "linux")]
#[test]
fn reset_arriving_during_a_wait_ends_it_and_is_reported_by_receive() {
    let (mut stack, mut socket, server) = connected();
    nb::block!(stack.send(&mut socket, b"unread")).expect("send");
    let mut buf = [0u8; 16];
    assert!(matches!(
        stack.receive(&mut socket, &mut buf),
        Err(nb::Error::WouldBlock)
    ));
    // The server closes with our bytes unread, while we wait: Linux
    // answers with RST.
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        drop(server);
    });
    let started = Instant::now();
    StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
    let took = started.elapsed();
    closer.join().expect("closer");
    assert!(took < Duration::from_secs(2), "waited {took:?}");
    assert_eq!(socket.pending, Some(StdNetError::Reset), "seen by the wait");
    assert_eq!(
        other_err(stack.receive(&mut socket, &mut buf)),
        StdNetError::Reset
    );
}

#[test]
fn wait_does_not_reuse_a_longer_receive_timeout_than_asked() {
    let (mut stack, mut socket, mut server) = connected();
    let mut wait = StdWait::new();
    // A long wait that data ends at once sets a long receive timeout.
    server.write_all(b"x").expect("write");
    wait.wait_readable(&mut stack, &mut socket, 10_000);
    let mut buf = [0u8; 4];
    assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
    // A short wait on the idle socket must not sleep that long (7.5 s).
    for timeout in [100, 60, 1000] {
        let started = Instant::now();
        wait.wait_readable(&mut stack, &mut socket, timeout);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(u64::from(timeout) + 1500),
            "asked {timeout} ms, waited {took:?}"
        );
    }
}

#[test]
fn repeated_waits_with_shrinking_timeouts_return_in_time_and_leave_the_socket_working() {
    let (mut stack, mut socket, mut server) = connected();
    let mut wait = StdWait::new();
    // As a caller's remaining time shrinks: through the receive-timeout
    // range, then the short waits (`poll`).
    let timeouts = (0..20)
        .map(|i| 100 - 5 * i)
        .chain((1..=5).rev().cycle().take(20));
    let mut buf = [0u8; 16];
    for timeout in timeouts {
        let started = Instant::now();
        wait.wait_readable(&mut stack, &mut socket, timeout);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(u64::from(timeout) + 1000),
            "asked {timeout} ms, waited {took:?}"
        );
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }
    server.write_all(b"still here").expect("write");
    let got = receive_all(&mut stack, &mut socket, 10, false);
    assert_eq!(got, b"still here");
    nb::block!(stack.send(&mut socket, b"and so am I")).expect("send");
    let mut reply = [0u8; 11];
    server.read_exact(&mut reply).expect("read");
    assert_eq!(&reply, b"and so am I");
}

#[test]
fn an_idle_wait_to_a_deadline_wakes_at_most_three_times() {
    let (mut stack, mut socket, _server) = connected();
    let mut wait = StdWait::new();
    let deadline = Instant::now() + Duration::from_millis(2_000);
    let mut wakes = 0;
    // What a client blocked until its keepalive does: wait for the rest.
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
        if ms == 0 {
            break;
        }
        wait.wait_readable(&mut stack, &mut socket, ms);
        wakes += 1;
    }
    // One receive timeout (three quarters), then one poll for the rest
    // (and possibly a last one for a millisecond lost to rounding); a
    // waiter that set a new timeout for each rest would wake five times.
    assert!(wakes <= 3, "woke {wakes} times in a 2 s idle wait");
}

#[test]
fn longer_wait_after_short_ones_is_honoured() {
    let (mut stack, mut socket, mut server) = connected();
    let mut wait = StdWait::new();
    wait.wait_readable(&mut stack, &mut socket, 5);
    // Leaves a short receive timeout (about 30 ms) set on the socket.
    wait.wait_readable(&mut stack, &mut socket, 60);
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        server.write_all(b"late").expect("write");
        server
    });
    // A wait may return early, so wait and receive until a deadline.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut waits = 0;
    let mut buf = [0u8; 8];
    let n = loop {
        assert!(Instant::now() < deadline, "no data after {waits} waits");
        waits += 1;
        wait.wait_readable(&mut stack, &mut socket, 300);
        match stack.receive(&mut socket, &mut buf) {
            Ok(n) => break n,
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => panic!("receive failed: {e}"),
        }
    };
    assert_eq!(buf.get(..n), Some(&b"late"[..]));
    // Each 300 ms wait sleeps at least 210 ms (kernel timers do not fire
    // early): one wait, more only if the writer is late by hundreds of
    // ms. Reusing the 30 ms timeout would take five or more.
    assert!(waits <= 4, "{waits} waits for data due in 150 ms");
    drop(writer.join().expect("writer"));
}

#[test]
fn receive_timeout_set_once_suits_similar_and_slowly_shrinking_waits() {
    for wait_ms in [
        SHORT_WAIT_MS,
        51,
        100,
        1000,
        5000,
        30_000,
        60_000,
        70_000,
        u32::MAX,
    ] {
        let set = ReadTimeouts::for_wait(wait_ms).best;
        assert!(set >= 1 && set < wait_ms, "{wait_ms}: {set}");
        // The caller's remaining time shrinks by up to an eighth (past the
        // ticks reserved for timer slack) and the timeout is still reused.
        let capped = wait_ms.min(MAX_READ_TIMEOUT_MS);
        let shrink = (capped - 2 * TICK_MS) / 8;
        for later in [wait_ms, wait_ms - shrink / 2, wait_ms - shrink] {
            assert!(
                ReadTimeouts::for_wait(later).suits(set),
                "{wait_ms} ms sets {set}, unused for {later}"
            );
        }
        // A much longer wait sets a longer timeout.
        if let Some(longer) = capped.checked_mul(3).filter(|l| *l <= MAX_READ_TIMEOUT_MS) {
            assert!(!ReadTimeouts::for_wait(longer).suits(set), "{longer}");
        }
    }
}

#[test]
fn receive_timeouts_that_suit_a_wait_expire_within_it() {
    // Linux's timer wheel rounds a socket timeout up to a tick (and
    // another for the tick in progress) and fires it up to 8/63 late: the
    // longest suitable timeout must still expire in time.
    let waits = (SHORT_WAIT_MS..2000)
        .chain((2000..200_000).step_by(997))
        .chain([u32::MAX - 1, u32::MAX]);
    for wait_ms in waits {
        let t = ReadTimeouts::for_wait(wait_ms);
        assert!(t.shortest >= 1, "{wait_ms}: {t:?}");
        assert!(
            t.shortest <= t.best && t.best <= t.longest,
            "{wait_ms}: {t:?}"
        );
        assert!(t.suits(t.best), "{wait_ms}: {t:?}");
        let longest = u64::from(t.longest);
        let worst = longest + (longest * 8).div_ceil(63) + u64::from(2 * TICK_MS);
        assert!(
            worst <= u64::from(wait_ms),
            "{wait_ms}: {t:?} may expire at {worst}"
        );
        // A reused timeout ends the wait at worst about half way.
        let capped = wait_ms.min(MAX_READ_TIMEOUT_MS);
        assert!(
            2 * t.shortest + 2 * TICK_MS + 1 >= capped,
            "{wait_ms}: {t:?}"
        );
    }
}

#[test]
fn dns_of_localhost_returns_a_loopback_address() {
    let mut stack = StdTcpStack::new();
    let ip = nb::block!(stack.get_host_by_name("localhost", AddrType::Either)).expect("localhost");
    assert!(ip.is_loopback(), "{ip}");
    let ip = nb::block!(stack.get_host_by_name("localhost", AddrType::IPv4)).expect("localhost v4");
    assert!(ip.is_ipv4() && ip.is_loopback(), "{ip}");
}

#[test]
fn dns_of_ip_literals_needs_no_lookup_and_honours_the_type() {
    let mut stack = StdTcpStack::new();
    let v4: IpAddr = "127.0.0.1".parse().expect("ip");
    let v6: IpAddr = "::1".parse().expect("ip");
    assert_eq!(
        stack.get_host_by_name("127.0.0.1", AddrType::Either),
        Ok(v4)
    );
    assert_eq!(stack.get_host_by_name("[::1]", AddrType::IPv6), Ok(v6));
    assert_eq!(stack.get_host_by_name("::1", AddrType::Either), Ok(v6));
    assert_eq!(
        other_err(stack.get_host_by_name("127.0.0.1", AddrType::IPv6)),
        StdNetError::NoAddress {
            host: "127.0.0.1".to_string()
        }
    );
}

#[test]
fn pick_prefers_ipv4_for_either() {
    let v4: IpAddr = "127.0.0.1".parse().expect("ip");
    let v6: IpAddr = "::1".parse().expect("ip");
    assert_eq!(pick([v6, v4].into_iter(), &AddrType::Either), Some(v4));
    assert_eq!(pick([v6].into_iter(), &AddrType::Either), Some(v6));
    assert_eq!(pick([v4, v6].into_iter(), &AddrType::IPv6), Some(v6));
    assert_eq!(pick([v6].into_iter(), &AddrType::IPv4), None);
}

#[test]
fn reverse_dns_is_unsupported() {
    let mut stack = StdTcpStack::new();
    let mut buf = [0u8; 255];
    let e = other_err(stack.get_host_by_address("127.0.0.1".parse().expect("ip"), &mut buf));
    assert_eq!(e, StdNetError::Unsupported);
}

#[test]
fn io_error_kinds_map_to_descriptive_variants() {
    use ErrorKind as K;
    assert_eq!(
        StdNetError::from_kind(K::ConnectionRefused),
        StdNetError::Refused
    );
    assert_eq!(
        StdNetError::from_kind(K::ConnectionReset),
        StdNetError::Reset
    );
    assert_eq!(
        StdNetError::from_kind(K::ConnectionAborted),
        StdNetError::Aborted
    );
    assert_eq!(
        StdNetError::from_kind(K::BrokenPipe),
        StdNetError::BrokenPipe
    );
    assert_eq!(StdNetError::from_kind(K::TimedOut), StdNetError::Timeout);
    assert_eq!(
        StdNetError::from_kind(K::NotConnected),
        StdNetError::NotConnected
    );
    assert_eq!(
        StdNetError::from_kind(K::UnexpectedEof),
        StdNetError::Closed
    );
    assert_eq!(
        StdNetError::from_kind(K::HostUnreachable),
        StdNetError::Unreachable
    );
    assert_eq!(
        StdNetError::from_kind(K::PermissionDenied),
        StdNetError::Io(K::PermissionDenied)
    );
    for e in [
        StdNetError::Closed,
        StdNetError::Reset,
        StdNetError::NotConnected,
        StdNetError::Aborted,
        StdNetError::BrokenPipe,
    ] {
        assert_eq!(e.kind(), TcpErrorKind::PipeClosed, "{e:?}");
    }
    for e in [
        StdNetError::Refused,
        StdNetError::Timeout,
        StdNetError::Unsupported,
    ] {
        assert_eq!(e.kind(), TcpErrorKind::Other, "{e:?}");
    }
}

#[test]
fn builder_sets_timeouts_and_clamps_zero() {
    let d = StdTcpStack::default();
    assert_eq!(d.connect_timeout(), Duration::from_secs(10));
    assert_eq!(d.write_timeout(), Duration::from_secs(10));
    let s = StdTcpStack::new()
        .with_connect_timeout(Duration::ZERO)
        .with_write_timeout(Duration::from_millis(250));
    assert_eq!(s.connect_timeout(), Duration::from_millis(1));
    assert_eq!(s.write_timeout(), Duration::from_millis(250));
}

#[test]
fn std_clock_is_monotonic() {
    let clock = StdClock::default();
    let mut last = clock.now_ms();
    for _ in 0..1000 {
        let now = clock.now_ms();
        assert!(now >= last);
        last = now;
    }
    thread::sleep(Duration::from_millis(20));
    assert!(clock.now_ms() >= last + 20);
}

contract_tests!(
    crate::std_tcp::StdTcpStack,
    crate::std_tcp::StdSocket,
    crate::std_tcp::StdWait
);
use keeps_the_contract::{connected, other_err};

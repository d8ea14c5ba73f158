//! The contract both std stacks keep ([`StdTcpStack`](super::StdTcpStack)
//! and [`PortableTcpStack`](super::PortableTcpStack)), written once: what
//! `receive`, `send`, `connect`, `close` and the waiter do against a
//! loopback peer. `contract_tests!(Stack, Socket, Waiter)` (full paths) makes a module
//! `keeps_the_contract` of these tests for one stack.

/// The contract tests for one stack, as a module `keeps_the_contract`.
macro_rules! contract_tests {
    ($stack:ty, $socket:ty, $wait:ty) => {
        mod keeps_the_contract {
            use core::fmt;
            use core::net::SocketAddr;
            use core::time::Duration;
            use std::io::{Read, Write};
            use std::net::{TcpListener, TcpStream};
            use std::string::ToString;
            use std::thread;
            use std::time::Instant;
            use std::vec;
            use std::vec::Vec;

            use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};

            use crate::Wait;
            use crate::std_tcp::StdNetError;

            type Stack = $stack;
            type Socket = $socket;
            type Waiter = $wait;

            /// A listener on a free loopback port.
            pub(super) fn listener() -> (TcpListener, SocketAddr) {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
                let a = l.local_addr().expect("local addr");
                (l, a)
            }

            /// A stack, a socket connected to a fresh loopback listener, and the
            /// accepted server side.
            pub(super) fn connected() -> (Stack, Socket, TcpStream) {
                let (l, addr) = listener();
                let mut stack = Stack::new();
                let mut socket = stack.socket().expect("socket");
                stack.connect(&mut socket, addr).expect("connect");
                let (server, _) = l.accept().expect("accept");
                (stack, socket, server)
            }

            pub(super) fn other_err<T: fmt::Debug>(r: nb::Result<T, StdNetError>) -> StdNetError {
                match r {
                    Err(nb::Error::Other(e)) => e,
                    r => panic!("expected an error, got {r:?}"),
                }
            }

            #[test]
            fn receive_on_idle_socket_returns_would_block() {
                let (mut stack, mut socket, _server) = connected();
                let mut buf = [0u8; 16];
                assert!(matches!(
                    stack.receive(&mut socket, &mut buf),
                    Err(nb::Error::WouldBlock)
                ));
            }

            #[test]
            fn receive_returns_data_then_would_block() {
                let (mut stack, mut socket, mut server) = connected();
                server.write_all(b"hello").expect("write");
                let mut wait = Waiter::new();
                wait.wait_readable(&mut stack, &mut socket, 5000);
                let mut buf = [0u8; 16];
                let n = stack.receive(&mut socket, &mut buf).expect("data");
                assert_eq!(&buf[..n], b"hello");
                assert!(matches!(
                    stack.receive(&mut socket, &mut buf),
                    Err(nb::Error::WouldBlock)
                ));
            }

            #[test]
            fn receive_after_peer_closes_returns_closed_not_ok_zero() {
                let (mut stack, mut socket, server) = connected();
                drop(server);
                Waiter::new().wait_readable(&mut stack, &mut socket, 5000);
                let mut buf = [0u8; 16];
                let e = other_err(stack.receive(&mut socket, &mut buf));
                assert_eq!(e, StdNetError::Closed);
                assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
                assert_eq!(e.to_string(), "connection closed by peer (EOF)");
                // Still closed on the next call.
                assert_eq!(
                    other_err(stack.receive(&mut socket, &mut buf)),
                    StdNetError::Closed
                );
            }

            #[test]
            fn receive_with_empty_buffer_returns_ok_zero() {
                let (mut stack, mut socket, _server) = connected();
                assert_eq!(stack.receive(&mut socket, &mut []).expect("empty"), 0);
                assert_eq!(stack.send(&mut socket, &[]).expect("empty"), 0);
            }

            #[cfg(target_os = "linux")]
            #[test]
            fn peer_reset_is_reported_as_reset_after_a_wait() {
                let (mut stack, mut socket, server) = connected();
                nb::block!(stack.send(&mut socket, b"unread")).expect("send");
                // Give the bytes time to land in the server's receive queue, then close
                // it unread: Linux answers with RST.
                thread::sleep(Duration::from_millis(50));
                drop(server);
                // The wait's recv sees ECONNRESET; the next receive must report it.
                Waiter::new().wait_readable(&mut stack, &mut socket, 5000);
                let mut buf = [0u8; 16];
                let e = other_err(stack.receive(&mut socket, &mut buf));
                assert_eq!(e, StdNetError::Reset);
                assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
            }

            #[test]
            fn send_after_peer_closes_eventually_fails_with_pipe_closed() {
                let (mut stack, mut socket, server) = connected();
                drop(server);
                let mut error = None;
                for _ in 0..100 {
                    match stack.send(&mut socket, b"data") {
                        Ok(_) | Err(nb::Error::WouldBlock) => {
                            thread::sleep(Duration::from_millis(10))
                        }
                        Err(nb::Error::Other(e)) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                let e = error.expect("send to a closed peer must fail");
                assert_eq!(e.kind(), TcpErrorKind::PipeClosed, "{e:?}");
            }

            #[test]
            fn connect_to_closed_loopback_port_gives_refused() {
                let (l, addr) = listener();
                drop(l);
                let mut stack = Stack::new().with_connect_timeout(Duration::from_secs(5));
                let mut socket = stack.socket().expect("socket");
                let e = other_err(stack.connect(&mut socket, addr));
                assert_eq!(e, StdNetError::Refused);
                assert_eq!(e.kind(), TcpErrorKind::Other);
                assert!(!socket.is_connected());
            }

            #[test]
            fn connect_on_connected_socket_gives_already_connected() {
                let (mut stack, mut socket, server) = connected();
                let addr = server.local_addr().expect("addr");
                assert_eq!(
                    other_err(stack.connect(&mut socket, addr)),
                    StdNetError::AlreadyConnected
                );
                assert!(socket.is_connected());
            }

            #[test]
            fn send_and_receive_on_unconnected_socket_give_not_connected() {
                let mut stack = Stack::default();
                let mut socket = stack.socket().expect("socket");
                assert!(!socket.is_connected());
                assert_eq!(socket.peer_addr(), None);
                assert_eq!(
                    other_err(stack.send(&mut socket, b"x")),
                    StdNetError::NotConnected
                );
                let mut buf = [0u8; 1];
                assert_eq!(
                    other_err(stack.receive(&mut socket, &mut buf)),
                    StdNetError::NotConnected
                );
                stack.close(socket).expect("close unconnected");
            }

            #[test]
            fn close_after_peer_is_gone_is_ok() {
                let (mut stack, socket, server) = connected();
                drop(server);
                thread::sleep(Duration::from_millis(20));
                stack.close(socket).expect("close");
            }

            #[test]
            fn wait_returns_soon_when_data_arrives() {
                let (mut stack, mut socket, mut server) = connected();
                let writer = thread::spawn(move || {
                    thread::sleep(Duration::from_millis(100));
                    server.write_all(b"x").expect("write");
                    server
                });
                let started = Instant::now();
                Waiter::new().wait_readable(&mut stack, &mut socket, 5000);
                let took = started.elapsed();
                assert!(
                    took < Duration::from_secs(1),
                    "waited {took:?} for data due in 100 ms"
                );
                let mut buf = [0u8; 4];
                assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
                assert_eq!(buf[0], b'x');
                drop(writer.join().expect("writer"));
            }

            #[test]
            fn wait_returns_after_about_its_timeout_when_idle() {
                let (mut stack, mut socket, _server) = connected();
                let started = Instant::now();
                Waiter::new().wait_readable(&mut stack, &mut socket, 100);
                let took = started.elapsed();
                assert!(took >= Duration::from_millis(50), "returned after {took:?}");
                assert!(took < Duration::from_secs(2), "returned after {took:?}");
                // The wait left nothing behind, and receive still does not block.
                let mut buf = [0u8; 4];
                assert!(matches!(
                    stack.receive(&mut socket, &mut buf),
                    Err(nb::Error::WouldBlock)
                ));
            }

            #[test]
            fn wait_with_zero_timeout_returns_at_once() {
                let (mut stack, mut socket, _server) = connected();
                let started = Instant::now();
                Waiter::new().wait_readable(&mut stack, &mut socket, 0);
                assert!(started.elapsed() < Duration::from_millis(500));
            }

            #[test]
            fn wait_on_unconnected_socket_sleeps_for_the_timeout() {
                let mut stack = Stack::new();
                let mut socket = stack.socket().expect("socket");
                let started = Instant::now();
                Waiter::new().wait_readable(&mut stack, &mut socket, 100);
                let took = started.elapsed();
                assert!(took >= Duration::from_millis(50), "returned after {took:?}");
                assert!(took < Duration::from_secs(2), "returned after {took:?}");
            }

            #[test]
            fn large_send_to_slow_reader_completes_without_error() {
                const LEN: usize = 8 * 1024 * 1024;
                let (mut stack, mut socket, mut server) = connected();
                let reader = thread::spawn(move || {
                    let mut received = 0usize;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = server.read(&mut buf).expect("read");
                        if n == 0 {
                            break;
                        }
                        for (i, b) in buf[..n].iter().enumerate() {
                            assert_eq!(*b, ((received + i) % 251) as u8, "byte {}", received + i);
                        }
                        received += n;
                        thread::sleep(Duration::from_millis(1));
                    }
                    received
                });
                let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
                let mut sent = 0;
                let mut calls = 0u32;
                let mut would_blocks = 0u32;
                while sent < LEN {
                    calls += 1;
                    match stack.send(&mut socket, &data[sent..]) {
                        Ok(n) => {
                            assert!(n > 0);
                            sent += n;
                        }
                        Err(nb::Error::WouldBlock) => would_blocks += 1,
                        Err(nb::Error::Other(e)) => panic!("send failed after {sent} bytes: {e}"),
                    }
                }
                stack.close(socket).expect("close");
                assert_eq!(reader.join().expect("reader"), LEN);
                // A full send buffer makes `send` wait in the kernel, not return at once.
                assert_eq!(would_blocks, 0, "{calls} calls");
            }

            #[test]
            fn send_to_peer_that_never_reads_returns_would_block_after_write_timeout() {
                let (stack, mut socket, _server) = connected();
                let mut stack = stack.with_write_timeout(Duration::from_millis(200));
                let chunk = vec![0x55u8; 1024 * 1024];
                let mut outcome = None;
                for _ in 0..200 {
                    let started = Instant::now();
                    match stack.send(&mut socket, &chunk) {
                        Ok(n) => assert!(n > 0),
                        Err(nb::Error::WouldBlock) => {
                            outcome = Some(started.elapsed());
                            break;
                        }
                        Err(nb::Error::Other(e)) => panic!("send failed: {e}"),
                    }
                }
                let took = outcome.expect("the buffers must fill up and send return WouldBlock");
                assert!(
                    took >= Duration::from_millis(100),
                    "WouldBlock after {took:?}"
                );
                assert!(took < Duration::from_secs(3), "WouldBlock after {took:?}");
                // Receive still does not block.
                let mut buf = [0u8; 4];
                assert!(matches!(
                    stack.receive(&mut socket, &mut buf),
                    Err(nb::Error::WouldBlock)
                ));
            }
        }
    };
}

pub(super) use contract_tests;

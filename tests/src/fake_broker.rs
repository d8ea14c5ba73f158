//! A scripted broker for exact wire behaviour and hostile input, and the
//! packet reading it uses.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A scripted broker on a loopback port: each accepted connection is handed
/// to `script`, which reads and writes raw bytes.
pub struct FakeBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: Option<JoinHandle<()>>,
}

impl FakeBroker {
    /// Accepts `connections` connections, one after the other, running
    /// `script(index, stream)` on each.
    pub fn start<F>(connections: usize, script: F) -> Self
    where
        F: Fn(usize, TcpStream) + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind fake broker");
        let addr = listener.local_addr().expect("fake broker address");
        let handle = thread::spawn(move || {
            for i in 0..connections {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
                        script(i, stream)
                    }
                    Err(_) => return,
                }
            }
        });
        FakeBroker {
            addr,
            handle: Some(handle),
        }
    }

    /// Waits for the script to finish, propagating its panics.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take()
            && let Err(panic) = h.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Reads one whole MQTT packet (fixed header and body) from `stream`, a byte
/// at a time through the header (wrap a socket in a `BufReader` where many
/// packets make that slow).
pub fn read_packet(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut packet = vec![0u8; 1];
    stream.read_exact(&mut packet)?;
    let mut len = 0usize;
    for i in 0..4 {
        let mut b = [0u8; 1];
        stream.read_exact(&mut b)?;
        packet.push(b[0]);
        len |= usize::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let start = packet.len();
    packet.resize(start + len, 0);
    stream.read_exact(&mut packet[start..])?;
    Ok(packet)
}

/// CONNACK: connection accepted, no session present.
pub const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// Reads the client's first packet and asserts that it is a CONNECT.
pub fn read_connect(stream: &mut TcpStream) -> Vec<u8> {
    let connect = read_packet(stream).expect("read CONNECT");
    assert_eq!(connect[0], 0x10, "first packet is CONNECT");
    connect
}

/// Reads the CONNECT ([`read_connect`]) and answers with `answer`, whatever
/// it is (a CONNACK, a refusal, hostile bytes); returns the CONNECT.
pub fn answer_connect(stream: &mut TcpStream, answer: &[u8]) -> Vec<u8> {
    let connect = read_connect(stream);
    stream
        .write_all(answer)
        .expect("write the answer to CONNECT");
    connect
}

/// Reads the CONNECT and answers CONNACK accepted; returns the CONNECT.
pub fn accept_connect(stream: &mut TcpStream) -> Vec<u8> {
    answer_connect(stream, &CONNACK_ACCEPTED)
}

//! An in-memory TCP stack on virtual time, for tests (feature `std`).
//!
//! [`MemoryStack`] is a [`TcpClientStack`] whose far end is the test: it reads
//! what the client sent, queues bytes for the client to receive, scripts
//! answers that are released when the client sends a given packet type, and
//! injects faults (refused connects, a connection that dies). [`VirtualClock`]
//! is a [`Clock`] that only moves when told to, and [`VirtualWait`] is a
//! [`Wait`] that moves it by the whole timeout instead of sleeping, so a test
//! proves a 60-second deadline exactly, in microseconds.
//!
//! Like smoltcp's fault-injection devices, it ships with the library so that
//! porters and fuzzers can drive a client without a network.
//!
//! ```
//! use embedded_nal::TcpClientStack;
//! use umqtt_transports::memory::MemoryStack;
//!
//! let mut stack = MemoryStack::new();
//! let handle = stack.clone(); // the test's end
//! handle.answer(b'p', b"pong");
//!
//! let mut socket = stack.socket().unwrap();
//! stack.connect(&mut socket, "127.0.0.1:1883".parse().unwrap()).unwrap();
//! stack.send(&mut socket, b"ping").unwrap();
//! let mut buf = [0u8; 8];
//! let n = stack.receive(&mut socket, &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"pong");
//! assert_eq!(handle.sent(), b"ping");
//! ```

use core::cell::{Cell, RefCell};
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind};

use crate::{Clock, Wait};

/// Why a [`MemoryStack`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// The test made this connect attempt fail.
    Refused,
    /// The test closed the connection.
    Closed,
    /// The socket was never connected.
    NotConnected,
    /// The host name is not in the test's DNS ([`MemoryStack::set_host`]).
    UnknownHost,
    /// Reverse lookups are not supported.
    Unsupported,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryError::Refused => "connection refused (by the test)",
            MemoryError::Closed => "connection closed (by the test)",
            MemoryError::NotConnected => "socket not connected",
            MemoryError::UnknownHost => "host name not known (to the test's DNS)",
            MemoryError::Unsupported => "reverse DNS lookups are not supported",
        })
    }
}

impl core::error::Error for MemoryError {}

impl TcpError for MemoryError {
    fn kind(&self) -> TcpErrorKind {
        match self {
            MemoryError::Refused | MemoryError::UnknownHost | MemoryError::Unsupported => {
                TcpErrorKind::Other
            }
            MemoryError::Closed | MemoryError::NotConnected => TcpErrorKind::PipeClosed,
        }
    }
}

#[derive(Default)]
struct Wire {
    to_client: VecDeque<u8>,
    from_client: Vec<u8>,
    answers: Vec<(u8, Vec<u8>)>,
    /// Connect attempts still to refuse.
    refuse: u32,
    connects: u32,
    /// Increments on every connect; sockets of older connections are dead.
    generation: u32,
    closed: bool,
    /// The far end closed its side: receive reports end of file once the
    /// queued bytes are read, while sends still succeed (as over real TCP).
    peer_closed: bool,
    /// Accept at most this many bytes per `send` (partial sends).
    send_limit: Option<usize>,
    /// `send` calls that took at least one byte.
    sends: u32,
    /// The test's DNS: host names and their addresses.
    hosts: Vec<(String, IpAddr)>,
    /// Every successful connect's remote address, in order.
    remotes: Vec<SocketAddr>,
}

/// An in-memory TCP stack; clones share the same wire, so the test keeps one
/// to play the broker.
#[derive(Clone, Default)]
pub struct MemoryStack(Rc<RefCell<Wire>>);

/// A socket of a [`MemoryStack`].
#[derive(Debug)]
pub struct MemorySocket {
    generation: Option<u32>,
}

impl MemoryStack {
    /// A stack with nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `bytes` for the client to receive.
    pub fn feed(&self, bytes: &[u8]) {
        self.0.borrow_mut().to_client.extend(bytes.iter().copied());
    }

    /// When the client next sends data starting with `first_byte`, queues
    /// `answer` for it (once). Answers are matched in the order given.
    pub fn answer(&self, first_byte: u8, answer: &[u8]) {
        self.0
            .borrow_mut()
            .answers
            .push((first_byte, answer.to_vec()));
    }

    /// Everything the client sent so far.
    pub fn sent(&self) -> Vec<u8> {
        self.0.borrow().from_client.clone()
    }

    /// Everything the client sent so far, clearing the record.
    pub fn take_sent(&self) -> Vec<u8> {
        core::mem::take(&mut self.0.borrow_mut().from_client)
    }

    /// Makes `host` resolve to `ip` (replacing what it resolved to before).
    pub fn set_host(&self, host: &str, ip: IpAddr) {
        let mut wire = self.0.borrow_mut();
        wire.hosts.retain(|(h, _)| h != host);
        wire.hosts.push((host.to_string(), ip));
    }

    /// The remote address of every successful connect so far, in order.
    pub fn remotes(&self) -> Vec<SocketAddr> {
        self.0.borrow().remotes.clone()
    }

    /// How many `send` calls took at least one byte so far.
    pub fn sends(&self) -> u32 {
        self.0.borrow().sends
    }

    /// Makes the next `attempts` connects fail with [`MemoryError::Refused`].
    pub fn refuse_connects(&self, attempts: u32) {
        self.0.borrow_mut().refuse = attempts;
    }

    /// How many connects succeeded.
    pub fn connects(&self) -> u32 {
        self.0.borrow().connects
    }

    /// Kills the current connection: the client's next send or receive fails
    /// with [`MemoryError::Closed`]; queued bytes and answers are dropped.
    pub fn close_connection(&self) {
        let mut wire = self.0.borrow_mut();
        wire.closed = true;
        wire.to_client.clear();
        wire.answers.clear();
    }

    /// Closes the far end's side, as a broker that drops the client does:
    /// once the queued bytes are read, `receive` fails with
    /// [`MemoryError::Closed`], while `send` still succeeds (the data is lost,
    /// as over real TCP until the reset comes back).
    pub fn close_by_peer(&self) {
        self.0.borrow_mut().peer_closed = true;
    }

    /// Accepts at most `limit` bytes per `send` (`None`: all), to exercise
    /// partial sends.
    pub fn limit_sends(&self, limit: Option<usize>) {
        self.0.borrow_mut().send_limit = limit;
    }

    fn live<'w>(wire: &'w mut Wire, socket: &MemorySocket) -> Result<&'w mut Wire, MemoryError> {
        match socket.generation {
            None => Err(MemoryError::NotConnected),
            Some(g) if g != wire.generation || wire.closed => Err(MemoryError::Closed),
            Some(_) => Ok(wire),
        }
    }
}

impl TcpClientStack for MemoryStack {
    type TcpSocket = MemorySocket;
    type Error = MemoryError;

    fn socket(&mut self) -> Result<MemorySocket, MemoryError> {
        Ok(MemorySocket { generation: None })
    }

    fn connect(
        &mut self,
        socket: &mut MemorySocket,
        remote: SocketAddr,
    ) -> nb::Result<(), MemoryError> {
        let mut wire = self.0.borrow_mut();
        if wire.refuse > 0 {
            wire.refuse -= 1;
            return Err(nb::Error::Other(MemoryError::Refused));
        }
        wire.generation = wire.generation.wrapping_add(1);
        wire.connects += 1;
        wire.remotes.push(remote);
        wire.closed = false;
        wire.peer_closed = false;
        wire.to_client.clear();
        socket.generation = Some(wire.generation);
        Ok(())
    }

    fn send(&mut self, socket: &mut MemorySocket, buf: &[u8]) -> nb::Result<usize, MemoryError> {
        let mut guard = self.0.borrow_mut();
        let wire = Self::live(&mut guard, socket)?;
        let n = wire.send_limit.map_or(buf.len(), |l| l.min(buf.len()));
        let (taken, _) = buf.split_at(n);
        wire.from_client.extend_from_slice(taken);
        if n > 0 {
            wire.sends += 1;
        }
        if let Some(pos) = wire
            .answers
            .iter()
            .position(|(b, _)| Some(b) == buf.first())
        {
            let (_, answer) = wire.answers.remove(pos);
            wire.to_client.extend(answer);
        }
        Ok(n)
    }

    fn receive(
        &mut self,
        socket: &mut MemorySocket,
        buf: &mut [u8],
    ) -> nb::Result<usize, MemoryError> {
        let mut guard = self.0.borrow_mut();
        let wire = Self::live(&mut guard, socket)?;
        if wire.to_client.is_empty() {
            return Err(if wire.peer_closed {
                nb::Error::Other(MemoryError::Closed)
            } else {
                nb::Error::WouldBlock
            });
        }
        let n = buf.len().min(wire.to_client.len());
        for (dst, src) in buf.iter_mut().zip(wire.to_client.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn close(&mut self, _: MemorySocket) -> Result<(), MemoryError> {
        Ok(())
    }
}

/// The test's DNS: names given with [`MemoryStack::set_host`], answered at
/// once whatever the address type asked for.
impl Dns for MemoryStack {
    type Error = MemoryError;

    fn get_host_by_name(&mut self, host: &str, _: AddrType) -> nb::Result<IpAddr, MemoryError> {
        let wire = self.0.borrow();
        wire.hosts
            .iter()
            .find(|(name, _)| name == host)
            .map(|(_, ip)| *ip)
            .ok_or(nb::Error::Other(MemoryError::UnknownHost))
    }

    fn get_host_by_address(&mut self, _: IpAddr, _: &mut [u8]) -> nb::Result<usize, MemoryError> {
        Err(nb::Error::Other(MemoryError::Unsupported))
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Default, Debug)]
pub struct VirtualClock(Rc<Cell<u64>>);

impl VirtualClock {
    /// A clock at `start_ms`.
    pub fn starting_at(start_ms: u64) -> Self {
        VirtualClock(Rc::new(Cell::new(start_ms)))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// A waiter that moves a [`VirtualClock`] by the whole timeout (nothing else
/// happens on the wire meanwhile) and records each wait.
#[derive(Clone, Default, Debug)]
pub struct VirtualWait {
    clock: VirtualClock,
    waits: Rc<RefCell<Vec<u32>>>,
}

impl VirtualWait {
    /// A waiter moving `clock`.
    pub fn new(clock: &VirtualClock) -> Self {
        VirtualWait {
            clock: clock.clone(),
            waits: Rc::default(),
        }
    }

    /// The timeouts of every wait so far, in ms.
    pub fn waits(&self) -> Vec<u32> {
        self.waits.borrow().clone()
    }
}

impl Wait<MemoryStack> for VirtualWait {
    /// Returns at once when the socket has something to read (data, or the
    /// far end's close); otherwise moves the clock by the whole timeout.
    fn wait_readable(&mut self, stack: &mut MemoryStack, _: &mut MemorySocket, timeout_ms: u32) {
        let wire = stack.0.borrow();
        let readable = !wire.to_client.is_empty() || wire.peer_closed || wire.closed;
        drop(wire);
        if !readable {
            self.idle_for(timeout_ms);
        }
    }

    fn idle(&mut self, _: &mut MemoryStack, timeout_ms: u32) {
        self.idle_for(timeout_ms);
    }
}

impl VirtualWait {
    fn idle_for(&self, timeout_ms: u32) {
        self.waits.borrow_mut().push(timeout_ms);
        self.clock.advance(u64::from(timeout_ms));
    }
}

/// A "random" generator that gives the same bytes in every run (feature
/// `tls`), so that a TLS client's ClientHello and key share repeat exactly
/// and a server flight recorded once replays byte for byte: for fuzzing the
/// TLS client over a [`MemoryStack`] and for recording its seeds.
///
/// **It makes TLS worthless** (anyone can compute the keys): never use it for
/// a real connection.
#[cfg(feature = "tls")]
#[derive(Debug, Clone, Default)]
pub struct ReplayRng(u64);

#[cfg(feature = "tls")]
impl rand_core::RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// splitmix64 over a counter.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Only so that TLS accepts it: see the warning on [`ReplayRng`].
#[cfg(feature = "tls")]
impl rand_core::CryptoRng for ReplayRng {}

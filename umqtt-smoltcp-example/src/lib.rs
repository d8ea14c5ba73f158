//! umqtt over smoltcp on a Linux TAP device: the worked example of
//! `docs/PORTING.md`.
//!
//! smoltcp is a `no_std` TCP/IP stack that runs in user space; `smoltcp-nal`
//! puts embedded-nal's `TcpClientStack` on top of it. That is everything the
//! umqtt client needs, so the client code here is the same as over the std
//! transport: only the three platform pieces differ.
//!
//! - the stack: [`TapStack`], smoltcp-nal's `NetworkStack` over smoltcp's
//!   `TunTapInterface` (on a microcontroller: over the Ethernet driver);
//! - the clock: [`MsClock`], milliseconds since it was made, which serves both
//!   umqtt's [`umqtt_transports::Clock`] and the `embedded_time::Clock` that
//!   smoltcp-nal wants (on a microcontroller: a hardware timer);
//! - the waiter: [`TapWait`], which polls the interface (smoltcp moves no byte
//!   unless polled): once, without sleeping, when the client calls
//!   `Wait::poll` (before each `receive`, after each packet sent), and while
//!   waiting, sleeping in `select(2)` on the TAP file descriptor until a frame
//!   arrives, the client's deadline passes, or smoltcp's timers are due (on a
//!   microcontroller: poll, then `WFI` until the Ethernet interrupt or a
//!   timer).
//!
//! [`open`] builds all three from a [`TapConfig`]:
//!
//! ```no_run
//! use umqtt_simple::{Client, Options, QoS};
//! use umqtt_smoltcp_example::{TapConfig, open};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tap = open(&TapConfig::new("tap0", "192.168.69.1".parse()?, 24))?;
//! let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
//! let mut client = Client::new(tap.stack, tap.clock, &mut tx, &mut rx, Options::new("tap-client"))
//!     .with_waiter(tap.waiter);
//! client.connect("192.168.69.100:1883".parse()?)?;
//! client.publish(b"hello", b"from smoltcp", false, QoS::AtLeastOnce)?;
//! client.disconnect()?;
//! client.pause(100); // the DISCONNECT left at once; let smoltcp send the FIN
//! # Ok(()) }
//! ```

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use umqtt_robust::RobustClient;
use umqtt_simple::{Client, Options};
use umqtt_transports::Wait;

pub use smoltcp_nal::NetworkError;

/// The embedded-nal stack: smoltcp-nal over smoltcp's TAP device.
pub type TapStack = smoltcp_nal::NetworkStack<'static, TunTapInterface, MsClock>;

/// umqtt-simple's client over [`TapStack`].
pub type TapClient<'a> = Client<'a, TapStack, MsClock, TapWait>;

/// umqtt-robust's reconnecting client over [`TapStack`].
pub type TapRobustClient<'a> = RobustClient<'a, TapStack, MsClock, TapWait>;

/// A millisecond clock over [`std::time::Instant`]: umqtt's clock, and the
/// `embedded_time` clock smoltcp-nal derives smoltcp's time from.
///
/// Copies share the same origin, so the client and the stack agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsClock {
    origin: Instant,
}

impl MsClock {
    /// A clock that reads 0 now.
    pub fn new() -> Self {
        MsClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MsClock {
    fn default() -> Self {
        Self::new()
    }
}

impl umqtt_transports::Clock for MsClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl embedded_time::Clock for MsClock {
    /// smoltcp-nal needs `u32: From<T>`; a 32-bit millisecond counter wraps
    /// after 49 days, which embedded-time's instants handle.
    type T = u32;
    const SCALING_FACTOR: embedded_time::rate::Fraction =
        embedded_time::rate::Fraction::new(1, 1000);

    fn try_now(&self) -> Result<embedded_time::Instant<Self>, embedded_time::clock::Error> {
        let ms = self.origin.elapsed().as_millis();
        // Wrapping on purpose: a tick counter.
        Ok(embedded_time::Instant::new(ms as u32))
    }
}

/// The longest [`TapWait`] sleeps before it polls smoltcp again by default.
pub const DEFAULT_MAX_SLEEP_MS: u32 = 20;

/// umqtt's [`Wait`] for [`TapStack`]: polls the interface, then sleeps in
/// `select(2)` on the TAP device until a frame arrives or the timeout passes.
///
/// smoltcp does nothing between polls: bytes the client sent stay in the
/// socket buffer, arriving frames stay in the device, and timers
/// (retransmission, ARP) do not run. So every wait starts with a poll, and
/// the sleep is cut into slices of at most `max_sleep_ms` with a poll after
/// each. smoltcp can say exactly when it next needs a poll
/// (`Interface::poll_delay`), but smoltcp-nal 0.7 keeps the socket set that
/// question needs to itself; the slice is the price (about 50 polls a second
/// while idle, each a few microseconds).
///
/// `wait_readable` returns early when a poll changed a socket (data may have
/// arrived): the client then calls `receive` and waits again if there was
/// nothing. `idle` polls for its whole timeout. `poll`, which the client
/// calls before each `receive` and after each packet it hands to `send`,
/// polls once and never sleeps, so a loop of `check_msg` calls and QoS 0
/// publishes moves bytes without a blocking call.
#[derive(Debug)]
pub struct TapWait {
    fd: RawFd,
    max_sleep_ms: u32,
    polls: u64,
    sleeps: u64,
}

impl TapWait {
    /// A waiter for the TAP device whose file descriptor is `fd`.
    pub fn new(fd: RawFd) -> Self {
        TapWait {
            fd,
            max_sleep_ms: DEFAULT_MAX_SLEEP_MS,
            polls: 0,
            sleeps: 0,
        }
    }

    /// Sleeps at most `ms` between two polls (at least 1).
    #[must_use]
    pub fn with_max_sleep_ms(mut self, ms: u32) -> Self {
        self.max_sleep_ms = ms.max(1);
        self
    }

    /// How often the waiter polled the interface and slept so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.polls, self.sleeps)
    }

    /// Polls `stack` once, without sleeping; returns whether a socket
    /// changed (a failed poll is logged and counts as no change).
    pub fn poll_once(&mut self, stack: &mut TapStack) -> bool {
        self.polls += 1;
        match stack.poll() {
            Ok(changed) => changed,
            Err(e) => {
                log::warn!("smoltcp poll failed: {e:?}");
                false
            }
        }
    }

    /// Polls `stack`, sleeping between polls, for `timeout_ms`; with
    /// `until_change`, returns as soon as a poll changed a socket.
    pub fn run(&mut self, stack: &mut TapStack, timeout_ms: u32, until_change: bool) {
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        loop {
            if self.poll_once(stack) && until_change {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let slice = (deadline - now).min(Duration::from_millis(u64::from(self.max_sleep_ms)));
            self.sleeps += 1;
            let micros = u64::try_from(slice.as_micros()).unwrap_or(u64::MAX);
            if let Err(e) =
                smoltcp::phy::wait(self.fd, Some(smoltcp::time::Duration::from_micros(micros)))
            {
                // Never spin: sleep the slice instead.
                log::warn!("select on the TAP device failed: {e}");
                std::thread::sleep(slice);
            }
        }
    }
}

impl Wait<TapStack> for TapWait {
    fn wait_readable(
        &mut self,
        stack: &mut TapStack,
        _socket: &mut <TapStack as embedded_nal::TcpClientStack>::TcpSocket,
        timeout_ms: u32,
    ) {
        self.run(stack, timeout_ms, true);
    }

    /// Keeps polling for the whole `timeout_ms` (the client naps 1 ms while
    /// `connect` or `send` would block, and pauses between reconnects):
    /// returning at the first change would turn smoltcp-nal's connect, which
    /// sends a new SYN on every call after a refusal, into a SYN flood.
    fn idle(&mut self, stack: &mut TapStack, timeout_ms: u32) {
        self.run(stack, timeout_ms, false);
    }

    /// One poll, no sleep: takes in arrived frames before the client's
    /// `receive`, and transmits what it just handed to `send`.
    fn poll(&mut self, stack: &mut TapStack) {
        self.poll_once(stack);
    }
}

/// How to bring up the smoltcp interface on a TAP device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// The TAP device, which must exist (`ip tuntap add tap0 mode tap`).
    pub tap: String,
    /// smoltcp's own MAC address on it.
    pub mac: [u8; 6],
    /// smoltcp's own IPv4 address.
    pub address: Ipv4Addr,
    /// Its prefix length (24 for a /24).
    pub prefix_len: u8,
    /// The default gateway, if the broker is not on the TAP's subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Receive and send buffer of each TCP socket, in bytes (default 4096).
    pub tcp_buffer: usize,
    /// How many TCP sockets (default 2; the client uses one at a time).
    pub sockets: usize,
}

impl TapConfig {
    /// smoltcp at `address`/`prefix_len` on `tap`, MAC 02:00:00:00:00:01,
    /// no gateway, two TCP sockets of 4 KiB each way.
    pub fn new(tap: &str, address: Ipv4Addr, prefix_len: u8) -> Self {
        TapConfig {
            tap: tap.to_string(),
            mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            address,
            prefix_len,
            gateway: None,
            tcp_buffer: 4096,
            sockets: 2,
        }
    }
}

/// What [`open`] returns: the three pieces a umqtt client takes.
pub struct Tap {
    /// The embedded-nal stack.
    pub stack: TapStack,
    /// The clock (the stack has a copy).
    pub clock: MsClock,
    /// The waiter, bound to the TAP device.
    pub waiter: TapWait,
}

/// A seed that differs from run to run: smoltcp's initial sequence numbers and
/// smoltcp-nal's local ports come from it, and a restarted program must not
/// reuse the last run's ports.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// Opens the TAP device and builds smoltcp's interface, its TCP sockets and
/// smoltcp-nal's stack on it.
///
/// # Errors
///
/// When the device cannot be opened (it does not exist, or this process may
/// not use it), or the gateway cannot be set.
pub fn open(config: &TapConfig) -> io::Result<Tap> {
    let mut device = TunTapInterface::new(&config.tap, Medium::Ethernet)?;
    let fd = device.as_raw_fd();
    let seed = seed();

    let mut iface_config = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
    iface_config.random_seed = seed;
    // smoltcp-nal starts smoltcp's time at zero on its first poll.
    let mut iface = Interface::new(iface_config, &mut device, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|addrs| {
        let cidr = IpCidr::new(IpAddress::Ipv4(config.address), config.prefix_len);
        if addrs.push(cidr).is_err() {
            log::warn!("no room for the address {cidr}");
        }
    });
    if let Some(gateway) = config.gateway {
        iface
            .routes_mut()
            .add_default_ipv4_route(gateway)
            .map_err(|_| io::Error::other("smoltcp's route table is full"))?;
    }

    let mut sockets = SocketSet::new(Vec::with_capacity(config.sockets));
    for _ in 0..config.sockets {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; config.tcp_buffer]),
            tcp::SocketBuffer::new(vec![0; config.tcp_buffer]),
        );
        // MQTT packets are small and latency matters: no Nagle (the std
        // transport's TCP_NODELAY), and ACK at once, so the waiter's slices
        // never delay an ACK.
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        sockets.add(socket);
    }

    let clock = MsClock::new();
    let mut stack = smoltcp_nal::NetworkStack::new(iface, device, sockets, clock);
    stack.seed_random_port(&seed.to_le_bytes());
    log::info!(
        "smoltcp up on {} as {}/{}",
        config.tap,
        config.address,
        config.prefix_len
    );
    Ok(Tap {
        stack,
        clock,
        waiter: TapWait::new(fd),
    })
}

/// A umqtt-simple client over `tap` with these buffers and options.
pub fn client<'a>(
    tap: Tap,
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> TapClient<'a> {
    Client::new(tap.stack, tap.clock, tx, rx, options).with_waiter(tap.waiter)
}

/// A umqtt-robust client over `tap` with these buffers and options.
pub fn robust_client<'a>(
    tap: Tap,
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> TapRobustClient<'a> {
    RobustClient::from_client(client(tap, tx, rx, options))
}

//! umqtt's async client over embassy-net on a Linux TAP device: the async
//! worked example of `docs/PORTING.md`.
//!
//! embassy-net is the network stack of the embassy ecosystem (smoltcp inside,
//! driven by an async task). It implements no embedded-nal `TcpClientStack`,
//! only the async traits: `embassy_net::tcp::client::TcpClient` is an
//! [`embedded_nal_async::TcpConnect`] whose connections are
//! [`embedded_io_async::Read`] + [`embedded_io_async::Write`]. That, plus a
//! `umqtt_transports::Timer` (here `umqtt_transports::embassy::EmbassyTimer`
//! over embassy-time), is all the async client needs.
//!
//! The platform pieces, as a firmware would have them, but on a PC:
//!
//! - the driver: embassy-net-tuntap's [`TunTapDevice`] on a named TAP device
//!   (on a microcontroller: the Ethernet or Wi-Fi driver);
//! - the stack: [`open`] builds an embassy-net [`Stack`] with a static IPv4
//!   address over it, and the [`Runner`] that moves its packets, which
//!   [`start`] runs in a task of its own ([`net_task`]);
//! - the executor: embassy-executor's std arch (one thread, which sleeps on a
//!   condition variable when no task is ready), and embassy-time's std time
//!   driver.
//!
//! [`start`] runs all of it on a thread of its own and hands the
//! application a [`Spawner`] and the [`Stack`] to spawn its tasks with. The
//! client code is the same as over any other async stack:
//!
//! ```no_run
//! use embassy_executor::Spawner;
//! use embassy_net::Stack;
//! use embassy_net::tcp::client::TcpClient;
//! use umqtt_embassy_example::{TapClient, TapClientError, TapConfig, TapTcpState, start};
//! use umqtt_simple::asynch::Client;
//! use umqtt_simple::{Options, QoS};
//! use umqtt_transports::embassy::EmbassyTimer;
//!
//! #[embassy_executor::task]
//! async fn app(stack: Stack<'static>) {
//!     let state = TapTcpState::new();
//!     let tcp = TcpClient::new(stack, &state);
//!     let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
//!     let mut client = Client::new(&tcp, EmbassyTimer, &mut tx, &mut rx, Options::new("embassy"));
//!     if let Err(e) = hello(&mut client).await {
//!         log::error!("{e}");
//!     }
//! }
//!
//! async fn hello(client: &mut TapClient<'_>) -> Result<(), TapClientError> {
//!     client.connect("192.168.69.100:1883".parse().expect("an address")).await?;
//!     client.publish(b"hello", b"from embassy-net", false, QoS::AtLeastOnce).await?;
//!     client.disconnect().await
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let config = TapConfig::new("tap0", "192.168.69.1".parse().expect("an address"), 24);
//! start(config, |spawner: Spawner, stack| spawner.spawn(app(stack)))?;
//! // The executor runs on its own thread until the process exits.
//! # Ok(()) }
//! ```

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use embassy_executor::{Executor, SpawnError, Spawner};
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Config, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use umqtt_transports::embassy::EmbassyTimer;

/// How many sockets the stack has room for. The MQTT clients use one at a
/// time; the rest is for an application's own.
pub const SOCKETS: usize = 4;

/// Bytes of each TCP connection's send buffer in [`TapTcpState`].
pub const TCP_TX: usize = 4096;
/// Bytes of each TCP connection's receive buffer in [`TapTcpState`].
pub const TCP_RX: usize = 4096;

/// The buffers of [`TapTcpClient`]: one connection at a time (the client
/// drops its connection before it opens the next), 4 KiB each way.
pub type TapTcpState = TcpClientState<1, TCP_TX, TCP_RX>;

/// embassy-net's `embedded_nal_async::TcpConnect` over [`TapTcpState`].
pub type TapTcpClient<'d> = TcpClient<'d, 1, TCP_TX, TCP_RX>;

/// umqtt-simple's async client over [`TapTcpClient`], its waits timed by
/// embassy-time.
pub type TapClient<'a> = umqtt_simple::asynch::Client<'a, TapTcpClient<'a>, EmbassyTimer>;

/// The error of [`TapClient`]: umqtt's, over embassy-net's TCP error.
pub type TapClientError = umqtt_simple::Error<embassy_net::tcp::Error>;

/// umqtt-robust's async reconnecting client over [`TapTcpClient`].
pub type TapRobustClient<'a> =
    umqtt_robust::asynch::RobustClient<'a, TapTcpClient<'a>, EmbassyTimer>;

/// The error of [`TapRobustClient`].
pub type TapRobustError = umqtt_robust::RobustError<embassy_net::tcp::Error>;

/// Where the stack sits: the TAP device and its address on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// The TAP device's name (made beforehand with `ip tuntap add`, the
    /// kernel's address on it, and up).
    pub tap: String,
    /// The stack's IPv4 address.
    pub ip: Ipv4Addr,
    /// The prefix length of its subnet (24 for a /24).
    pub prefix_len: u8,
    /// The default gateway, if the broker is not on the TAP's subnet.
    pub gateway: Option<Ipv4Addr>,
    /// The stack's MAC address: unicast (the lowest bit of the first
    /// byte clear), or smoltcp panics.
    pub mac: [u8; 6],
}

impl TapConfig {
    /// `ip`/`prefix_len` on `tap`, no gateway, MAC 02:00:00:00:00:01 (locally
    /// administered).
    pub fn new(tap: &str, ip: Ipv4Addr, prefix_len: u8) -> Self {
        TapConfig {
            tap: tap.to_string(),
            ip,
            prefix_len,
            gateway: None,
            mac: [0x02, 0, 0, 0, 0, 0x01],
        }
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Opens the TAP device and builds the embassy-net stack over it, with the
/// static address of `config`. Returns the stack (a `Copy` handle the
/// application's tasks share) and the runner, which must run in a task of
/// its own ([`net_task`]) for any packet to move.
///
/// The stack's resources are leaked (they must live as long as the program,
/// as on a microcontroller, where they are a `static`): call it once per
/// process.
pub fn open(config: &TapConfig) -> io::Result<(Stack<'static>, Runner<'static, TunTapDevice>)> {
    if config.prefix_len > 32 {
        return Err(invalid(format!(
            "prefix length {} is more than 32",
            config.prefix_len
        )));
    }
    if config.mac[0] & 1 != 0 {
        return Err(invalid(format!(
            "MAC {:02x?} is a multicast address",
            config.mac
        )));
    }
    let mut device = TunTapDevice::new(&config.tap)
        .map_err(|e| io::Error::new(e.kind(), format!("TAP device {}: {e}", config.tap)))?;
    device.set_hardware_address(config.mac);
    let net = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(config.ip, config.prefix_len),
        gateway: config.gateway,
        dns_servers: Default::default(),
    });
    let resources = Box::leak(Box::new(StackResources::<SOCKETS>::new()));
    // smoltcp's seed (initial sequence numbers, local ports): different in
    // every process, so a restarted client does not reuse the last one's.
    let seed = RandomState::new().hash_one(std::process::id());
    Ok(embassy_net::new(device, net, resources, seed))
}

/// The task that moves the stack's packets: polls the TAP device and
/// smoltcp's timers, forever.
#[embassy_executor::task]
pub async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

/// How long [`start`] waits for the executor thread to report.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Runs the stack of `config` on an embassy executor in a thread of its own:
/// opens the device ([`open`]), spawns [`net_task`], then calls `app` with
/// the spawner and the stack to spawn the application's tasks.
///
/// Returns once they are spawned, or with the error that stopped them (no
/// TAP device, no permission, a task already spawned). The executor runs
/// until the process exits; its tasks report to the rest of the program
/// through whatever `app` gave them (a channel, say). Like [`open`]: once per
/// process, and `#[embassy_executor::task]` pools hold one task each by
/// default.
pub fn start<F>(config: TapConfig, app: F) -> io::Result<()>
where
    F: FnOnce(Spawner, Stack<'static>) -> Result<(), SpawnError> + Send + 'static,
{
    let (ready, started) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("embassy-executor".to_string())
        .spawn(move || {
            let (stack, runner) = match open(&config) {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let executor = Box::leak(Box::new(Executor::new()));
            executor.run(move |spawner| {
                let spawned = spawner
                    .spawn(net_task(runner))
                    .and_then(|()| app(spawner, stack))
                    .map_err(|e| io::Error::other(format!("spawning a task: {e}")));
                let _ = ready.send(spawned);
            })
        })?;
    match started.recv_timeout(START_LIMIT) {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(format!(
            "the executor thread did not start within {START_LIMIT:?}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_refuses_a_prefix_longer_than_32_bits_before_touching_the_device() {
        let config = TapConfig::new("no-such-tap", Ipv4Addr::new(192, 168, 69, 1), 33);
        let e = open(&config).err().expect("prefix 33 is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("33"), "{e}");
    }

    #[test]
    fn open_refuses_a_multicast_mac_which_smoltcp_would_panic_on() {
        let mut config = TapConfig::new("no-such-tap", Ipv4Addr::new(192, 168, 69, 1), 24);
        config.mac = [0x03, 0, 0, 0, 0, 1];
        let e = open(&config).err().expect("a multicast MAC is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("multicast"), "{e}");
    }
}

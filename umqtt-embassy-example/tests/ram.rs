//! The async rows of docs/PORTING.md's RAM table: what the async clients
//! take over embassy-net, by `size_of`, and what their futures take while a
//! call runs (run with `--nocapture` to see it). Buffers are the user's.

use std::mem::{size_of, size_of_val};
use std::net::{Ipv4Addr, SocketAddr};

use umqtt_embassy_example::{TapClient, TapRobustClient, TapTcpClient, TapTcpState};
use umqtt_simple::{Options, QoS};
use umqtt_tests::tokio_net::{AsyncClient, TokioNet};
use umqtt_transports::embassy::EmbassyTimer;

#[test]
fn async_ram_table() {
    let rows: [(&str, usize); 5] = [
        (
            "umqtt-simple async `Client` over embassy-net's `TcpClient`, `EmbassyTimer`",
            size_of::<TapClient<'static>>(),
        ),
        (
            "umqtt-robust async `RobustClient` over the same, 256-byte subscription store",
            size_of::<TapRobustClient<'static>>(),
        ),
        (
            "embassy-net `TcpClient` (borrowed by the client)",
            size_of::<TapTcpClient<'static>>(),
        ),
        (
            "embassy-net `TcpClientState` for one connection of 4 KiB each way",
            size_of::<TapTcpState>(),
        ),
        ("`EmbassyTimer`", size_of::<EmbassyTimer>()),
    ];
    println!("| what | bytes |\n| --- | ---: |");
    for (what, bytes) in rows {
        println!("| {what} | {bytes} |");
    }
    // The futures of the calls, which live in the task while a call runs
    // (measured over tokio's sockets: a stack's own read and write futures
    // come on top of the client's state).
    let net = TokioNet;
    let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    let mut client = AsyncClient::new(
        &net,
        umqtt_transports::std_async::StdTimer::new(),
        &mut tx,
        &mut rx,
        Options::new("ram"),
    );
    let broker = SocketAddr::from((Ipv4Addr::LOCALHOST, 1883));
    let connect = size_of_val(&client.connect(broker));
    let publish = size_of_val(&client.publish(b"t", b"x", false, QoS::AtLeastOnce));
    let subscribe = size_of_val(&client.subscribe(b"t", QoS::AtLeastOnce));
    let wait = size_of_val(&client.wait_msg());
    println!("| future of `connect` | {connect} |");
    println!("| future of `publish` | {publish} |");
    println!("| future of `subscribe` | {subscribe} |");
    println!("| future of `wait_msg` | {wait} |");
    // A call's state is a few hundred bytes, not kilobytes: the buffers are
    // borrowed, never copied into a future.
    assert!(
        publish < 2_048 && wait < 2_048,
        "publish {publish}, wait_msg {wait}"
    );
}

/// The async TLS rows: `TlsConnect` over embassy-net's `TcpClient` and the
/// clients over it (the client holds the open `TlsStream`: embedded-tls's
/// connection state), and the futures of the calls while they run (over
/// tokio's sockets). The record buffers are the user's (`TlsBuffers`).
#[test]
fn async_tls_ram_table() {
    use embassy_net::tcp::client::TcpConnection;
    use rand_core::OsRng;
    use umqtt_transports::tls::{SystemTime, TlsBuffers, TlsConnect, TlsOptions, TlsStream};

    type TapTls<'a> = TlsConnect<'a, TapTcpClient<'a>, OsRng, SystemTime>;
    let rows: [(&str, usize); 6] = [
        (
            "`TlsConnect` over embassy-net's `TcpClient` (`OsRng`, `SystemTime`)",
            size_of::<TapTls<'static>>(),
        ),
        (
            "`TlsStream` over embassy-net's `TcpConnection` (embedded-tls state)",
            size_of::<TlsStream<'static, TcpConnection<'static, 1, 4096, 4096>>>(),
        ),
        (
            "`TlsBuffers` (the slices, not the buffers)",
            size_of::<TlsBuffers<'static>>(),
        ),
        (
            "umqtt-simple async `Client` over that `TlsConnect` (holds the `TlsStream`)",
            size_of::<umqtt_simple::asynch::Client<'static, TapTls<'static>, EmbassyTimer>>(),
        ),
        (
            "umqtt-robust async `RobustClient` over that `TlsConnect`",
            size_of::<umqtt_robust::asynch::RobustClient<'static, TapTls<'static>, EmbassyTimer>>(),
        ),
        ("`EmbassyTimer`", size_of::<EmbassyTimer>()),
    ];
    println!("| what | bytes |\n| --- | ---: |");
    for (what, bytes) in rows {
        println!("| {what} | {bytes} |");
    }
    let net = TokioNet;
    let (mut read, mut write) = ([0u8; 64], [0u8; 256]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let tls = TlsConnect::new(&net, OsRng, &buffers, TlsOptions::new("ram"));
    let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    let mut client = umqtt_simple::asynch::Client::new(
        &tls,
        umqtt_transports::std_tcp::StdTimer::new(),
        &mut tx,
        &mut rx,
        Options::new("ram"),
    );
    let broker = SocketAddr::from((Ipv4Addr::LOCALHOST, 8883));
    let connect = size_of_val(&client.connect(broker));
    let publish = size_of_val(&client.publish(b"t", b"x", false, QoS::AtLeastOnce));
    let wait = size_of_val(&client.wait_msg());
    println!("| future of `connect` over TLS (the handshake inside) | {connect} |");
    println!("| future of `publish` over TLS | {publish} |");
    println!("| future of `wait_msg` over TLS | {wait} |");
}

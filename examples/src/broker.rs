//! An MQTT broker (rumqttd) inside this process, so the quickstart runs with
//! nothing installed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The broker to use: `--host` (and `--port`), or, without `--host`, one
/// started in this process ([`start_local_broker`], on `--port` if given),
/// which it announces.
pub fn broker_or_local(args: &crate::Args) -> Result<(String, u16), String> {
    match &args.host {
        Some(host) => Ok((host.clone(), args.port_or_default())),
        None => {
            let addr = start_local_broker(args.port)?;
            println!("Started an MQTT broker (rumqttd) in this process on {addr}");
            Ok((addr.ip().to_string(), addr.port()))
        }
    }
}

/// Starts rumqttd in a background thread on 127.0.0.1 (`port`, or a free one
/// when `None`) and returns once it accepts connections. It stops when the
/// process exits.
pub fn start_local_broker(port: Option<u16>) -> Result<SocketAddr, String> {
    let port = match port {
        Some(port) => port,
        None => free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?,
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 5_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        router: rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Default::default()
    };
    let (failed, failure) = mpsc::channel();
    thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = rumqttd::Broker::new(config).start() {
                let _ = failed.send(format!("{e:?}"));
            }
        })
        .map_err(|e| format!("cannot start the broker thread: {e}"))?;

    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(e) = failure.try_recv() {
            return Err(format!(
                "the in-process broker failed to start on {addr}: {e}"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(addr);
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "the in-process broker did not start on {addr} within 10 s"
    ))
}

/// A TCP port on 127.0.0.1 that is free right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

//! umqtt-simple over smoltcp on a TAP device: connect, subscribe, publish,
//! receive what came back, disconnect. Or, with `--conformance`, the stack
//! conformance check over smoltcp.
//!
//! ```text
//! ip tuntap add tap0 mode tap
//! ip addr add 192.168.69.100/24 dev tap0
//! ip link set tap0 up
//! mosquitto -c conf           # listener 1883 192.168.69.100
//! umqtt-smoltcp --tap tap0 --ip 192.168.69.1/24 --broker 192.168.69.100:1883
//! ```
//!
//! Run it as root (or with CAP_NET_ADMIN) and, for a test, inside a network
//! namespace of its own (`unshare -n`), as this crate's tests do.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use umqtt_conformance::{self as conformance, Config};
use umqtt_simple::{Message, Options, QoS};
use umqtt_smoltcp_example::{TapConfig, client, open};

const USAGE: &str = "usage: umqtt-smoltcp --tap NAME --ip ADDR/PREFIX --broker ADDR:PORT
       [--gateway ADDR] [--topic TOPIC] [--count N] [--keepalive SECONDS]
       [--conformance --closed-port ADDR:PORT [--black-hole ADDR:PORT]]";

struct Args {
    tap: String,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    broker: SocketAddr,
    topic: String,
    count: u32,
    keepalive: u16,
    conformance: bool,
    closed_port: Option<SocketAddr>,
    black_hole: Option<SocketAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut tap = None;
    let mut ip = None;
    let mut broker = None;
    let mut args = Args {
        tap: String::new(),
        ip: Ipv4Addr::UNSPECIFIED,
        prefix_len: 24,
        gateway: None,
        broker: SocketAddr::from(([0, 0, 0, 0], 1883)),
        topic: "umqtt/smoltcp".to_string(),
        count: 3,
        keepalive: 30,
        conformance: false,
        closed_port: None,
        black_hole: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--conformance" {
            args.conformance = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--tap" => tap = Some(value.clone()),
            "--ip" => {
                let (addr, prefix) = value.split_once('/').unwrap_or((value.as_str(), "24"));
                ip = Some(addr.parse::<Ipv4Addr>().map_err(|e| bad(&e))?);
                args.prefix_len = prefix.parse().map_err(|e| bad(&e))?;
            }
            "--gateway" => args.gateway = Some(value.parse().map_err(|e| bad(&e))?),
            "--broker" => broker = Some(value.parse().map_err(|e| bad(&e))?),
            "--topic" => args.topic = value.clone(),
            "--count" => args.count = value.parse().map_err(|e| bad(&e))?,
            "--keepalive" => args.keepalive = value.parse().map_err(|e| bad(&e))?,
            "--closed-port" => args.closed_port = Some(value.parse().map_err(|e| bad(&e))?),
            "--black-hole" => args.black_hole = Some(value.parse().map_err(|e| bad(&e))?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    args.tap = tap.ok_or("--tap is required")?;
    args.ip = ip.ok_or("--ip is required")?;
    args.broker = broker.ok_or("--broker is required")?;
    if args.conformance && args.closed_port.is_none() {
        return Err("--conformance needs --closed-port".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = TapConfig::new(&args.tap, args.ip, args.prefix_len);
    config.gateway = args.gateway;
    let mut tap = open(&config)?;

    if args.conformance {
        let closed = args.closed_port.ok_or("--closed-port is required")?;
        let mut check = Config::new("smoltcp-nal 0.7 on smoltcp 0.12 (TAP)", args.broker, closed);
        if let Some(hole) = args.black_hole {
            check = check.black_hole(hole);
        }
        let mut scratch = vec![0u8; 4096];
        let report = conformance::run(
            &mut tap.stack,
            &tap.clock,
            &mut tap.waiter,
            &check,
            &mut scratch,
        );
        println!("{report}");
        return if report.failures() == 0 {
            Ok(())
        } else {
            Err(format!("{} behaviour(s) failed", report.failures()).into())
        };
    }

    let received = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| {
        println!(
            "received {} on {}",
            String::from_utf8_lossy(m.payload),
            String::from_utf8_lossy(m.topic)
        );
        received.borrow_mut().push(m.payload.to_vec());
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let client_id = format!("umqtt-smoltcp-{}", std::process::id());
    let options = Options::new(&client_id).keepalive(args.keepalive);
    let mut client = client(tap, &mut tx, &mut rx, options);
    client.set_callback(&mut on_message);

    let session_present = client.connect(args.broker)?;
    println!(
        "connected to {} (session present: {session_present})",
        args.broker
    );
    client.subscribe(args.topic.as_bytes(), QoS::AtLeastOnce)?;
    for i in 0..args.count {
        let payload = format!("hello {i} from smoltcp");
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        client.publish(args.topic.as_bytes(), payload.as_bytes(), false, qos)?;
        println!("published {payload:?} with {qos:?}");
    }
    // Messages may have arrived inside publish (QoS 1 waits for its PUBACK).
    while received.borrow().len() < args.count as usize {
        if !client.wait_msg_for(5_000)? {
            return Err(format!(
                "only {} of {} messages came back",
                received.borrow().len(),
                args.count
            )
            .into());
        }
    }
    client.disconnect()?;
    // The waiter's poll sent the DISCONNECT; the FIN that `close` queued
    // leaves only when smoltcp is polled again.
    client.pause(200);
    println!(
        "received {} messages; disconnected",
        received.borrow().len()
    );
    Ok(())
}

//! umqtt's async client over embassy-net on a TAP device: connect,
//! subscribe, publish at QoS 1 and 0 in turn, receive what came back,
//! disconnect. The client runs in a task on embassy-executor's std arch,
//! beside the task that runs the stack.
//!
//! ```text
//! ip tuntap add tap0 mode tap
//! ip addr add 192.168.69.100/24 dev tap0
//! ip link set tap0 up
//! mosquitto -c conf           # listener 1883 192.168.69.100
//! umqtt-embassy-demo --tap tap0 --ip 192.168.69.1/24 --broker 192.168.69.100:1883
//! ```
//!
//! Run it as root (or with CAP_NET_ADMIN) and, for a test, inside a network
//! namespace of its own (`unshare -n`), as this crate's tests do.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use embassy_net::Stack;
use embassy_net::tcp::client::TcpClient;
use umqtt_embassy_example::{TapClient, TapConfig, TapTcpState, start};
use umqtt_simple::{Message, Options, QoS};
use umqtt_transports::embassy::EmbassyTimer;

const USAGE: &str = "usage: umqtt-embassy-demo --tap NAME --ip ADDR/PREFIX --broker ADDR:PORT
       [--gateway ADDR] [--topic TOPIC] [--count N] [--keepalive SECONDS]";

/// How long the whole run may take before the program gives up.
const RUN_LIMIT: Duration = Duration::from_secs(60);

struct Args {
    tap: String,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    broker: SocketAddr,
    topic: String,
    count: u32,
    keepalive: u16,
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
        topic: "umqtt/embassy".to_string(),
        count: 3,
        keepalive: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
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
            other => return Err(format!("unknown option {other}")),
        }
    }
    args.tap = tap.ok_or("--tap is required")?;
    args.ip = ip.ok_or("--ip is required")?;
    args.broker = broker.ok_or("--broker is required")?;
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
    let mut config = TapConfig::new(&args.tap, args.ip, args.prefix_len);
    config.gateway = args.gateway;
    let (done, finished) = mpsc::channel();
    if let Err(e) = start(config, move |spawner, stack| {
        spawner.spawn(demo(stack, args, done))
    }) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // The executor thread never ends; the process does, when the demo task
    // has reported (or not, within the limit).
    match finished.recv_timeout(RUN_LIMIT) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: the demo did not finish within {RUN_LIMIT:?}");
            ExitCode::FAILURE
        }
    }
}

/// The demo, as a task on the executor that also runs the stack.
#[embassy_executor::task]
async fn demo(stack: Stack<'static>, args: Args, done: mpsc::Sender<Result<(), String>>) {
    let _ = done.send(run(stack, &args).await);
}

async fn run(stack: Stack<'static>, args: &Args) -> Result<(), String> {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
    let received = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| {
        println!(
            "received {} on {} ({:?})",
            String::from_utf8_lossy(m.payload),
            String::from_utf8_lossy(m.topic),
            m.qos
        );
        received.borrow_mut().push(m.payload.to_vec());
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let client_id = format!("umqtt-embassy-{}", std::process::id());
    let options = Options::new(&client_id).keepalive(args.keepalive);
    let mut client: TapClient<'_> =
        umqtt_simple::asynch::Client::new(&tcp, EmbassyTimer, &mut tx, &mut rx, options);
    client.set_callback(&mut on_message);
    let e = |e: umqtt_embassy_example::TapClientError| e.to_string();

    let session_present = client.connect(args.broker).await.map_err(e)?;
    println!(
        "connected to {} (session present: {session_present})",
        args.broker
    );
    let topic = args.topic.as_bytes();
    let granted = client.subscribe(topic, QoS::AtLeastOnce).await.map_err(e)?;
    println!("subscribed to {} ({granted:?})", args.topic);
    for i in 0..args.count {
        let payload = format!("hello {i} from embassy-net");
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        client
            .publish(topic, payload.as_bytes(), false, qos)
            .await
            .map_err(e)?;
        println!("published {payload:?} with {qos:?}");
    }
    // Messages may have arrived inside publish (QoS 1 waits for its PUBACK).
    while received.borrow().len() < args.count as usize {
        if !client.wait_msg_for(5_000).await.map_err(e)? {
            return Err(format!(
                "only {} of {} messages came back",
                received.borrow().len(),
                args.count
            ));
        }
    }
    client.disconnect().await.map_err(e)?;
    println!(
        "received {} messages; disconnected",
        received.borrow().len()
    );
    Ok(())
}

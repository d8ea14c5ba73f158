//! A private network namespace with a TAP device and mosquitto in it, for the
//! tests of the user-space stacks (the smoltcp and embassy-net examples).
//!
//! A test calls [`enter`] with its own name. Outside, it re-executes its test
//! binary under `unshare -n` (a new, empty network namespace), running only
//! that test, waits for it and reports its output; inside, `enter` sets the
//! namespace up and hands the test a [`Netns`]. Nothing in the namespace can
//! reach the outside: it has only `lo` and the TAP device, whose other end is
//! the user-space stack (smoltcp, embassy-net) in the same process.
//!
//! Where that is impossible (not root, no /dev/net/tun, no `unshare`), the
//! test prints `SKIPPED <test>: <reason>` and passes, unless
//! `UMQTT_REQUIRE_NETNS=1` (CI), where it fails.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use crate::scratch_dir;
use crate::{
    find_mosquitto, find_program, free_port, mosquitto_config, mosquitto_required, spawn_mosquitto,
    wait_for_listener,
};

/// The TAP device inside the namespace.
pub const TAP: &str = "tap0";
/// The kernel's address on the TAP device: mosquitto listens here.
pub const BROKER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 100);
/// The user-space stack's address on the TAP device (smoltcp, embassy-net).
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
/// An address on the TAP's subnet that nobody answers: the kernel has a
/// static neighbour entry for it (so it sends SYNs into the void) and the
/// user-space stack's ARP requests for it go unanswered.
pub const BLACK_HOLE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 99);
/// The broker's port.
pub const BROKER_PORT: u16 = 1883;
/// A port on the broker's address where nothing listens.
pub const CLOSED_PORT: u16 = 1884;

/// How long the test inside the namespace may run.
const CHILD_LIMIT: Duration = Duration::from_secs(240);
/// Exit code of a child that found the namespace unusable.
const EXIT_UNUSABLE: i32 = 77;

const ENV_CHILD: &str = "UMQTT_NETNS_CHILD";
const ENV_PARENT_NS: &str = "UMQTT_NETNS_PARENT";
const ENV_PIDS: &str = "UMQTT_NETNS_PIDS";

/// The broker's address.
pub fn broker() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(BROKER_IP, BROKER_PORT))
}

/// Whether a test that cannot run here must fail instead of skipping.
pub fn required() -> bool {
    netns_required() || mosquitto_required()
}

fn netns_required() -> bool {
    std::env::var("UMQTT_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

fn skip(test: &str, reason: &str, required: bool) {
    assert!(
        !required,
        "{test} cannot run here ({reason}), and UMQTT_REQUIRE_NETNS=1"
    );
    eprintln!("SKIPPED {test}: {reason}");
}

/// The namespace a test runs in, set up.
pub struct Netns {
    /// A scratch directory for configs and logs.
    pub dir: PathBuf,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn own_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Runs `test` inside a network namespace of its own. Returns the namespace
/// in the re-executed child, where the test body runs; `None` in the parent
/// (after the child passed, or after printing why the test was skipped).
pub fn enter(test: &str) -> Option<Netns> {
    if std::env::var(ENV_CHILD).is_ok_and(|t| t == test) {
        return Some(inside(test));
    }
    outside(test);
    None
}

fn outside(test: &str) {
    if !is_root() {
        return skip(
            test,
            "not root (creating a network namespace and a TAP device needs it)",
            netns_required(),
        );
    }
    if !Path::new("/dev/net/tun").exists() {
        return skip(test, "/dev/net/tun does not exist", netns_required());
    }
    let Some(unshare) = find_program("unshare", &["/usr/bin/unshare", "/bin/unshare"]) else {
        return skip(
            test,
            "unshare is not installed (util-linux)",
            netns_required(),
        );
    };
    if find_program("ip", &["/usr/sbin/ip", "/sbin/ip", "/bin/ip"]).is_none() {
        return skip(test, "ip is not installed (iproute2)", netns_required());
    }
    if find_mosquitto().is_none() {
        return skip(
            test,
            "mosquitto is not installed (apt-get install mosquitto)",
            required(),
        );
    }
    match Command::new(&unshare).args(["-n", "true"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let why = format!(
                "`unshare -n` fails: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return skip(test, &why, netns_required());
        }
        Err(e) => return skip(test, &format!("`unshare -n` fails: {e}"), netns_required()),
    }

    let dir = scratch_dir(test);
    let out_path = dir.join("child.out");
    let pids_path = dir.join("child.pids");
    let out = std::fs::File::create(&out_path).expect("create the child's output file");
    let err = out.try_clone().expect("clone the output file");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(&unshare)
        .arg("-n")
        .arg("--")
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV_CHILD, test)
        .env(ENV_PARENT_NS, own_netns())
        .env(ENV_PIDS, &pids_path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the test under unshare -n");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if started.elapsed() > CHILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            kill_recorded(&pids_path);
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!("---- {test}, inside its network namespace ----\n{output}");
    match status {
        None => panic!("{test} did not finish within {CHILD_LIMIT:?} inside its namespace"),
        Some(s) if s.code() == Some(EXIT_UNUSABLE) => {
            let reason = output
                .lines()
                .find_map(|l| l.strip_prefix("UNUSABLE: "))
                .unwrap_or("the namespace could not be set up")
                .to_string();
            skip(test, &reason, netns_required());
        }
        Some(s) => assert!(s.success(), "{test} failed inside its namespace ({s})"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the processes (mosquitto) a timed-out child recorded.
fn kill_recorded(pids: &Path) {
    for pid in std::fs::read_to_string(pids).unwrap_or_default().lines() {
        if pid.trim().parse::<u32>().is_ok() {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
    }
}

fn unusable(reason: &str) -> ! {
    println!("UNUSABLE: {reason}");
    std::process::exit(EXIT_UNUSABLE);
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| unusable(&format!("{program} {}: {e}", args.join(" "))));
    if !out.status.success() {
        unusable(&format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
}

fn inside(test: &str) -> Netns {
    // Never set addresses up in the namespace the tests were started in.
    let parent = std::env::var(ENV_PARENT_NS).unwrap_or_default();
    let here = own_netns();
    assert!(
        !here.is_empty() && here != parent,
        "not in a network namespace of its own (here {here:?}, parent {parent:?})"
    );
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert_eq!(
        links.lines().count(),
        1,
        "a fresh namespace has only lo:\n{links}"
    );
    run("ip", &["tuntap", "add", TAP, "mode", "tap"]);
    run("ip", &["addr", "add", "192.168.69.100/24", "dev", TAP]);
    run("ip", &["link", "set", TAP, "up"]);
    run("ip", &["link", "set", "lo", "up"]);
    // The black hole for the kernel's stack: SYNs go to a MAC nobody has.
    run(
        "ip",
        &[
            "neigh",
            "add",
            &BLACK_HOLE_IP.to_string(),
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            TAP,
            "nud",
            "permanent",
        ],
    );
    // Per namespace: a kernel connect into the black hole gives up after
    // 3 s instead of 127 s.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/tcp_syn_retries", "1") {
        unusable(&format!("setting tcp_syn_retries: {e}"));
    }
    println!(
        "namespace {here}: {TAP} 192.168.69.100/24 (kernel, mosquitto), user-space stack at {STACK_IP}"
    );
    Netns {
        dir: scratch_dir(test),
    }
}

impl Netns {
    /// Starts mosquitto on the broker address, logging every packet.
    pub fn mosquitto(&self) -> Mosquitto {
        Mosquitto::start(&self.dir, broker())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// mosquitto as a subprocess (in the namespace: on 192.168.69.100:1883),
/// killed when dropped. Unlike `umqtt_tests::Mosquitto` it listens where it
/// is told, logs every packet (`log_type all`, which the tests count), keeps
/// its files in a directory it does not own, and records its pid for the
/// parent to kill should the test run out of time in its namespace.
pub struct Mosquitto {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Mosquitto {
    /// Starts mosquitto on `addr`, with its config and log in `dir`.
    pub fn start(dir: &Path, addr: SocketAddr) -> Self {
        Self::start_with(dir, addr, "")
    }

    /// [`Mosquitto::start`] with the config lines `extra` for its listener
    /// (a TLS certificate, say).
    pub fn start_with(dir: &Path, addr: SocketAddr, extra: &str) -> Self {
        let config = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        let text = mosquitto_config(addr, &log, &format!("log_type all\n{extra}"));
        std::fs::write(&config, text).expect("write mosquitto.conf");
        let child = spawn(&config);
        let mut broker = Mosquitto {
            addr,
            child,
            config,
            log,
        };
        broker.wait_ready();
        broker
    }

    /// Starts mosquitto on a free loopback port, or returns `None` (after
    /// printing why) when it is not installed and not required.
    pub fn on_loopback(test: &str, dir: &Path) -> Option<Self> {
        if find_mosquitto().is_none() {
            skip(
                test,
                "mosquitto is not installed (apt-get install mosquitto)",
                required(),
            );
            return None;
        }
        Some(Self::start(
            dir,
            SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
        ))
    }

    fn wait_ready(&mut self) {
        if let Ok(path) = std::env::var(ENV_PIDS) {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{}", self.child.id());
            }
        }
        if !wait_for_listener(self.addr, Duration::from_secs(10)) {
            let _ = self.child.kill();
            panic!("mosquitto did not start; log:\n{}", self.log());
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it contains `line`, or as it is after 5 s. mosquitto
    /// writes a packet's line once it has handled the packet, which can be
    /// after the client's call returned (the DISCONNECT a task sent last,
    /// on a loaded machine): a test that reads the log at once may miss it.
    pub fn log_once(&self, line: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(line) || start.elapsed() > Duration::from_secs(5) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again with the same config.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.config);
        self.wait_ready();
    }
}

fn spawn(config: &Path) -> Child {
    let binary = find_mosquitto().expect("mosquitto was found before");
    spawn_mosquitto(&binary, config)
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

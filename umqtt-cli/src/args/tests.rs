//! The command line, parsed without touching the network.

use super::*;
use std::time::Duration;

fn parse_strs(args: &[&str]) -> Result<Parsed, String> {
    parse(args.iter().map(|s| s.to_string()))
}

fn publish(args: &[&str]) -> PubArgs {
    let mut all = vec!["pub"];
    all.extend_from_slice(args);
    match parse_strs(&all) {
        Ok(Parsed::Run(Command::Pub(a))) => a,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn subscribe(args: &[&str]) -> SubArgs {
    let mut all = vec!["sub"];
    all.extend_from_slice(args);
    match parse_strs(&all) {
        Ok(Parsed::Run(Command::Sub(a))) => a,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn error(args: &[&str]) -> String {
    match parse_strs(args) {
        Err(e) => e,
        other => panic!("{args:?} should fail: {other:?}"),
    }
}

#[test]
fn pub_defaults() {
    let a = publish(&["-t", "a/b", "-m", "hello"]);
    assert_eq!(
        a,
        PubArgs {
            connection: Connection::default(),
            topic: "a/b".into(),
            source: Source::Message("hello".into()),
            qos: QoS::AtMostOnce,
            retain: false,
            timeout_s: DEFAULT_PUB_TIMEOUT_S,
            repeat: 1,
            repeat_delay: Duration::ZERO,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            outbox: None,
        }
    );
    assert_eq!(a.connection.host, "localhost");
    assert_eq!(a.connection.port, 1883);
    assert_eq!(a.connection.keepalive, 60);
    assert!(a.connection.clean_session);
}

#[test]
fn pub_every_option_short() {
    let a = publish(&[
        "-h",
        "10.0.0.2",
        "-p",
        "1884",
        "-i",
        "dev",
        "-u",
        "alice",
        "-P",
        "secret",
        "-k",
        "30",
        "-c",
        "-d",
        "-t",
        "t",
        "-l",
        "-q",
        "1",
        "-r",
        "-W",
        "5",
        "--will-topic",
        "w",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
        "--will-retain",
    ]);
    assert_eq!(a.timeout_s, 5);
    let c = &a.connection;
    assert_eq!(c.host, "10.0.0.2");
    assert_eq!(c.port, 1884);
    assert_eq!(c.client_id.as_deref(), Some("dev"));
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("secret"));
    assert_eq!(c.keepalive, 30);
    assert!(!c.clean_session);
    assert!(c.debug);
    assert_eq!(
        c.will,
        Some(Will {
            topic: "w".into(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: true,
        })
    );
    assert_eq!(a.source, Source::Lines);
    assert_eq!(a.qos, QoS::AtLeastOnce);
    assert!(a.retain);
}

#[test]
fn long_options_both_spellings() {
    let a = publish(&[
        "--host=broker",
        "--port",
        "8883",
        "--id=x",
        "--username",
        "u",
        "--pw=p",
        "--keepalive=0",
        "--topic",
        "t",
        "--message=a=b",
        "--qos=1",
        "--retain",
    ]);
    assert_eq!(a.connection.host, "broker");
    assert_eq!(a.connection.port, 8883);
    assert_eq!(a.connection.keepalive, 0);
    assert_eq!(a.source, Source::Message("a=b".into()));
    assert!(a.retain);
    let s = subscribe(&[
        "--topic=x/#",
        "--verbose",
        "--disable-clean-session",
        "--id",
        "i",
    ]);
    assert!(s.verbose);
    assert!(!s.connection.clean_session);
}

#[test]
fn pub_message_sources() {
    assert_eq!(publish(&["-t", "t", "-n"]).source, Source::Null);
    assert_eq!(publish(&["-t", "t", "-s"]).source, Source::Stdin);
    assert_eq!(
        publish(&["-t", "t", "-f", "fw.bin"]).source,
        Source::File("fw.bin".into())
    );
    // A message may look like an option: it is the value of -m.
    assert_eq!(
        publish(&["-t", "t", "-m", "-v"]).source,
        Source::Message("-v".into())
    );
    assert_eq!(
        publish(&["-t", "t", "-m", ""]).source,
        Source::Message(String::new())
    );
}

#[test]
fn sub_topics_repeat_and_limits() {
    let s = subscribe(&[
        "-t", "a/+", "-t", "b/#", "-v", "-C", "5", "-W", "3", "-q", "1",
    ]);
    assert_eq!(s.topics, vec!["a/+".to_string(), "b/#".to_string()]);
    assert!(s.verbose);
    assert_eq!(s.count, Some(5));
    assert_eq!(s.timeout_s, Some(3));
    assert_eq!(s.qos, QoS::AtLeastOnce);
    let s = subscribe(&["-t", "#"]);
    assert_eq!((s.count, s.timeout_s, s.verbose), (None, None, false));
    assert_eq!(subscribe(&["-t", "#", "-q", "2"]).qos, QoS::ExactlyOnce);
}

#[test]
fn sub_skip_retained() {
    assert!(subscribe(&["-t", "#", "-R"]).skip_retained);
    assert!(!subscribe(&["-t", "#"]).skip_retained);
    assert!(error(&["pub", "-t", "a", "-m", "x", "-R"]).contains("unknown option `-R`"));
}

#[test]
fn sub_filter_out_repeats() {
    let s = subscribe(&[
        "-t",
        "#",
        "-T",
        "a/+",
        "--filter-out",
        "b/#",
        "--filter-out=c",
    ]);
    assert_eq!(s.filter_out, ["a/+", "b/#", "c"]);
    assert!(subscribe(&["-t", "#"]).filter_out.is_empty());
    assert!(error(&["sub", "-t", "#", "-T", "a/b#"]).contains("invalid -T filter `a/b#`"));
    assert!(error(&["sub", "-t", "#", "-T"]).contains("`-T` needs a value"));
    assert!(error(&["pub", "-t", "a", "-m", "x", "-T", "a"]).contains("unknown option `-T`"));
}

#[test]
fn sub_exit_on_subscribed() {
    assert!(subscribe(&["-t", "#", "-E"]).exit_on_subscribed);
    assert!(!subscribe(&["-t", "#"]).exit_on_subscribed);
    assert!(error(&["pub", "-t", "a", "-m", "x", "-E"]).contains("unknown option `-E`"));
}

#[test]
fn sub_unsubscribe_repeats_and_may_stand_alone() {
    let s = subscribe(&["-U", "a/+", "--unsubscribe", "b/#", "-c", "-i", "me"]);
    assert_eq!(s.unsubscribe, ["a/+", "b/#"]);
    assert!(s.topics.is_empty());
    let s = subscribe(&["-t", "x", "-U", "y"]);
    assert_eq!(
        (s.topics, s.unsubscribe),
        (vec!["x".into()], vec!["y".into()])
    );
    assert!(subscribe(&["-t", "#"]).unsubscribe.is_empty());
    assert!(error(&["sub", "-U", "a/b#"]).contains("invalid -U filter `a/b#`"));
    assert!(error(&["sub"]).contains("give at least one topic filter with -t (or -U)"));
    assert!(error(&["pub", "-t", "a", "-m", "x", "-U", "a"]).contains("unknown option `-U`"));
}

#[test]
fn sub_remove_retained() {
    assert!(subscribe(&["-t", "#", "--remove-retained"]).remove_retained);
    assert!(!subscribe(&["-t", "#"]).remove_retained);
    assert!(error(&["sub", "-t", "#", "--remove-retained=1"]).contains("takes no value"));
    assert!(
        error(&["pub", "-t", "a", "-m", "x", "--remove-retained"])
            .contains("unknown option `--remove-retained`")
    );
}

#[test]
fn pub_repeat_and_its_delay() {
    let a = publish(&[
        "-t",
        "t",
        "-m",
        "x",
        "--repeat",
        "3",
        "--repeat-delay",
        "0.25",
    ]);
    assert_eq!((a.repeat, a.repeat_delay), (3, Duration::from_millis(250)));
    let a = publish(&["-t", "t", "-n", "--repeat=2", "--repeat-delay=2"]);
    assert_eq!((a.repeat, a.repeat_delay), (2, Duration::from_secs(2)));
    assert_eq!(publish(&["-t", "t", "-s", "--repeat-delay", "0"]).repeat, 1);
    let cases: &[(&[&str], &str)] = &[
        (&["--repeat", "0"], "invalid count `0` for --repeat"),
        (&["--repeat", "x"], "invalid count `x` for --repeat"),
        (
            &["--repeat-delay", "-1"],
            "invalid delay `-1` for --repeat-delay",
        ),
        (&["--repeat-delay", "nan"], "invalid delay `nan`"),
        (&["--repeat-delay", "inf"], "invalid delay `inf`"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["pub", "-t", "t", "-m", "x"];
        args.extend_from_slice(extra);
        assert!(
            error(&args).contains(expected),
            "{extra:?}: {}",
            error(&args)
        );
    }
    assert!(error(&["pub", "-t", "t", "-l", "--repeat", "2"]).contains("do not go with -l"));
    assert!(error(&["sub", "-t", "t", "--repeat", "2"]).contains("unknown option `--repeat`"));
}

#[test]
fn pub_max_inflight_is_a_count_from_1_to_65535() {
    assert_eq!(publish(&["-t", "t", "-l"]).max_inflight, 20);
    assert_eq!(
        publish(&["-t", "t", "-l", "-q", "1", "--max-inflight", "1"]).max_inflight,
        1
    );
    assert_eq!(
        publish(&["-t", "t", "-l", "--max-inflight=65535"]).max_inflight,
        65535
    );
    for bad in ["0", "65536", "-1", "x"] {
        let e = error(&["pub", "-t", "t", "-l", "--max-inflight", bad]);
        assert!(
            e.contains(&format!(
                "invalid count `{bad}` for --max-inflight: give 1 to 65535"
            )),
            "{bad}: {e}"
        );
    }
    assert!(
        error(&["sub", "-t", "t", "--max-inflight", "5"])
            .contains("unknown option `--max-inflight`")
    );
}

#[test]
fn sub_no_newline() {
    assert!(subscribe(&["-t", "#", "-N"]).no_newline);
    assert!(!subscribe(&["-t", "#"]).no_newline);
    assert!(error(&["pub", "-t", "a", "-m", "x", "-N"]).contains("unknown option `-N`"));
    assert!(error(&["sub", "-t", "a", "-N=1"]).contains("unknown option `-N=1`"));
}

#[test]
fn an_empty_client_id_asks_the_broker_for_one_with_a_clean_session() {
    // MQTT-3.1.3-6: the broker assigns an id to an empty one.
    let s = subscribe(&["-t", "#", "-i", ""]);
    assert_eq!(s.connection.client_id.as_deref(), Some(""));
    assert!(s.connection.clean_session);
}

#[test]
fn help_everywhere() {
    assert_eq!(parse_strs(&["--help"]), Ok(Parsed::Help(USAGE.into())));
    assert_eq!(parse_strs(&["help"]), Ok(Parsed::Help(USAGE.into())));
    assert_eq!(parse_strs(&["help", "pub"]), Ok(Parsed::Help(pub_usage())));
    assert_eq!(parse_strs(&["help", "sub"]), Ok(Parsed::Help(sub_usage())));
    assert_eq!(
        parse_strs(&["pub", "--help"]),
        Ok(Parsed::Help(pub_usage()))
    );
    // --help wins over what is missing or wrong after it.
    assert_eq!(
        parse_strs(&["sub", "--help", "-q", "7"]),
        Ok(Parsed::Help(sub_usage()))
    );
    assert_eq!(parse_strs(&["--version"]), Ok(Parsed::Version));
    // The limits the help states are the ones in force.
    let mib = crate::session::RX_BUFFER >> 20;
    assert!(sub_usage().contains(&format!("over {mib} MiB")));
    assert!(pub_usage().contains(&format!("default {DEFAULT_PUB_TIMEOUT_S})")));
    for text in [pub_usage(), sub_usage()] {
        assert!(text.contains("-h, --host HOST"));
        assert!(text.contains("--cafile FILE"));
    }
}

#[test]
fn h_is_the_host_not_help() {
    assert_eq!(
        publish(&["-h", "example", "-t", "t", "-n"]).connection.host,
        "example"
    );
    assert_eq!(
        error(&["pub", "-t", "t", "-n", "-h"]),
        "`-h` needs a host: -h is the broker host, as in mosquitto; --help prints the help"
    );
}

#[test]
fn tls_options_select_tls_and_port_8883() {
    let a = publish(&["-t", "t", "-n", "--cafile", "ca.pem"]);
    assert_eq!(a.connection.port, TLS_PORT);
    let tls = a.connection.tls.expect("tls");
    assert_eq!(tls.cafile, Some(PathBuf::from("ca.pem")));
    assert!(!tls.insecure);
    let a = publish(&["-t", "t", "-n", "--insecure", "-p", "9999"]);
    assert_eq!(a.connection.port, 9999);
    assert!(a.connection.tls.expect("tls").insecure);
    let a = publish(&[
        "-t",
        "t",
        "-n",
        "--cafile=ca.pem",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
    ]);
    let tls = a.connection.tls.expect("tls");
    assert_eq!(tls.cert, Some(PathBuf::from("c.pem")));
    assert_eq!(tls.key, Some(PathBuf::from("k.pem")));
    assert_eq!(publish(&["-t", "t", "-n"]).connection.tls, None);
    assert_eq!(publish(&["-t", "t", "-n"]).connection.port, 1883);
}

#[test]
fn incomplete_tls_options_are_refused_with_one_clear_line() {
    assert!(
        error(&[
            "pub", "-t", "t", "-n", "--cert", "c.pem", "--cafile", "ca.pem"
        ])
        .starts_with("--cert needs --key")
    );
    assert!(
        error(&["sub", "-t", "t", "--key", "k.pem", "--cafile", "ca"])
            .starts_with("--key needs --cert")
    );
    assert!(
        error(&[
            "sub",
            "-t",
            "t",
            "--cert",
            "c",
            "--key",
            "k",
            "--tls-engine",
            "embedded"
        ])
        .starts_with("--tls-engine embedded needs --cafile or --capath")
    );
}

#[test]
fn tls_engine_version_and_alpn() {
    // No CA option with the default engine: the system trust store.
    let a = publish(&["-t", "t", "-n", "--cert", "c", "--key", "k"]);
    let tls = a.connection.tls.expect("tls");
    assert_eq!(tls.engine, Engine::Rustls);
    assert_eq!((tls.cafile, tls.capath), (None, None));
    // Each of these alone means TLS.
    for extra in [
        &["--tls-engine", "rustls"][..],
        &["--tls-version", "tlsv1.2"],
        &["--alpn", "x-amzn-mqtt-ca"],
    ] {
        let mut args = vec!["-t", "t", "-n"];
        args.extend_from_slice(extra);
        let a = publish(&args);
        assert_eq!(a.connection.port, TLS_PORT, "{extra:?}");
        assert!(a.connection.tls.is_some(), "{extra:?}");
    }
    let a = publish(&[
        "-t",
        "t",
        "-n",
        "--alpn",
        "a",
        "--tls-alpn",
        "b",
        "--tls-version",
        "tlsv1.3",
    ]);
    let tls = a.connection.tls.expect("tls");
    assert_eq!(tls.alpn, ["a", "b"]);
    assert_eq!(tls.version, Some(TlsVersion::Tls13));
    assert!(error(&["pub", "-t", "t", "-n", "--tls-engine", "openssl"]).contains("choose rustls"));
    assert!(
        error(&["pub", "-t", "t", "-n", "--tls-version", "tlsv1.1"]).contains("TLS 1.1 and older")
    );
    assert!(
        error(&[
            "pub",
            "-t",
            "t",
            "-n",
            "--cafile",
            "ca",
            "--tls-engine",
            "embedded",
            "--tls-version",
            "tlsv1.2"
        ])
        .contains("TLS 1.3 only")
    );
}

#[test]
fn capath_selects_tls_and_insecure_with_a_ca_option_is_a_usage_error() {
    let a = subscribe(&["-t", "t", "--capath", "/etc/ssl/certs"]);
    assert_eq!(a.connection.port, TLS_PORT);
    let tls = a.connection.tls.expect("tls");
    assert_eq!(tls.capath, Some(PathBuf::from("/etc/ssl/certs")));
    assert_eq!(tls.cafile, None);
    for ca in [&["--cafile", "ca.pem"], &["--capath", "/etc/ssl"]] {
        let mut args = vec!["sub", "-t", "t", "--insecure"];
        args.extend_from_slice(ca);
        let e = error(&args);
        assert!(
            e.starts_with(
                "--insecure turns verification off, so it cannot be used with --cafile or --capath"
            ),
            "{e}"
        );
    }
}

#[test]
fn errors_are_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "no subcommand given"),
        (&["publish"], "unknown subcommand `publish`"),
        (&["pub", "-m", "x"], "give exactly one topic with -t"),
        (
            &["pub", "-t", "a", "-t", "b", "-m", "x"],
            "give exactly one topic with -t",
        ),
        (&["pub", "-t", "a"], "give a message: -m, -l, -n, -s or -f"),
        (
            &["pub", "-t", "a", "-m", "x", "-l"],
            "give only one of -m, -l, -n, -s and -f",
        ),
        (&["pub", "-t", "a/#", "-m", "x"], "invalid -t topic `a/#`"),
        (&["pub", "-t", "", "-m", "x"], "invalid -t topic ``"),
        (&["sub"], "give at least one topic filter with -t"),
        (&["sub", "-t", "a/b#"], "invalid topic filter `a/b#`"),
        (
            &["sub", "-t", "a", "-m", "x"],
            "unknown option `-m` for `umqtt sub`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-v"],
            "unknown option `-v` for `umqtt pub`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-C", "1"],
            "unknown option `-C`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "extra"],
            "unexpected argument `extra`",
        ),
        (&["pub", "-t"], "`-t` needs a value"),
        (
            &["pub", "-t", "a", "-m", "x", "-p", "0"],
            "invalid port `0`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-p", "65536"],
            "invalid port `65536`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-q", "2"],
            "-q 2: publishing with QoS 2 is not supported",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-c", "-i", ""],
            "-c needs a client id (-i)",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-q", "one"],
            "invalid QoS `one` for -q",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-k", "-1"],
            "invalid keepalive `-1`",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-h", ""],
            "`-h` needs a non-empty value",
        ),
        (&["pub", "-t", "a", "-m", "x", "-P", "pw"], "-P needs -u"),
        (&["sub", "-t", "a", "-c"], "-c needs a client id (-i)"),
        (
            &["sub", "-t", "a", "--will-payload", "x"],
            "need --will-topic",
        ),
        (&["sub", "-t", "a", "--will-retain"], "need --will-topic"),
        (
            &["sub", "-t", "a", "--will-topic", "w/+"],
            "invalid --will-topic topic `w/+`",
        ),
        (
            &["sub", "-t", "a", "--will-qos", "3"],
            "invalid QoS `3` for --will-qos: use 0, 1 or 2",
        ),
        (&["sub", "-t", "a", "-C", "0"], "invalid count `0` for -C"),
        (&["sub", "-t", "a", "-C", "x"], "invalid count `x` for -C"),
        (&["sub", "-t", "a", "-W", "0"], "invalid timeout `0` for -W"),
        (
            &["sub", "-t", "a", "-W", "1.5"],
            "invalid timeout `1.5` for -W",
        ),
        (&["sub", "-t", "a", "-v=1"], "unknown option `-v=1`"),
        (
            &["sub", "-t", "a", "--verbose=1"],
            "`--verbose` takes no value",
        ),
        (&["help", "nope"], "no help for `nope`"),
    ];
    for (args, expected) in cases {
        let e = error(args);
        assert!(
            e.contains(expected),
            "{args:?}: {e:?} should contain {expected:?}"
        );
        assert!(!e.contains('\n'), "{args:?}: {e:?} is not one line");
    }
}

#[test]
fn subcommand_errors_point_at_its_help() {
    assert!(error(&["sub", "-x"]).ends_with("(see `umqtt sub --help`)"));
    assert!(error(&["pub", "-x"]).ends_with("(see `umqtt pub --help`)"));
}

#[test]
fn a_url_sets_broker_credentials_and_topic_and_mqtts_means_tls() {
    let a = publish(&[
        "-L",
        "mqtt://alice:pw@broker.local:1884/devices/7",
        "-m",
        "x",
    ]);
    assert_eq!(a.topic, "devices/7");
    let c = &a.connection;
    assert_eq!((c.host.as_str(), c.port), ("broker.local", 1884));
    assert_eq!(
        (c.username.as_deref(), c.password.as_deref()),
        (Some("alice"), Some("pw"))
    );
    assert!(c.tls.is_none());
    let s = subscribe(&["-L", "mqtts://broker.local/a/+", "--cafile", "ca.pem"]);
    assert_eq!(s.topics, ["a/+"]);
    assert_eq!(
        s.connection.port, TLS_PORT,
        "mqtts without a port means 8883"
    );
    assert!(s.connection.tls.is_some());
    // No CA option: the system trust store (the default engine).
    let s = subscribe(&["-L", "mqtts://broker.local/a"]);
    assert_eq!(s.connection.port, TLS_PORT);
    assert!(s.connection.tls.is_some());
    assert!(error(&["pub", "-L", "mqtt://h", "-m", "x"]).contains("no topic after the host"));
}

//! The help texts of `umqtt`, `umqtt pub` and `umqtt sub`.

/// `umqtt --help`.
pub const USAGE: &str = "\
umqtt: publish and subscribe to an MQTT 3.1.1 broker, the mosquitto_pub and
mosquitto_sub way, on the umqtt client.

Usage:
  umqtt pub -t TOPIC (-m MESSAGE | -l | -n | -s | -f FILE) [options]
  umqtt sub -t FILTER [-t FILTER ...] [-v] [-C COUNT] [-W SECONDS] [options]
  umqtt sub -U FILTER -c -i ID
  umqtt pub --help | umqtt sub --help | umqtt --version

Exit status: 0 on success, 1 when the broker or the network failed (one line
on stderr says why), 2 for a bad command line.
";

/// Options shared by `pub` and `sub`, for their help texts.
const CONNECTION_HELP: &str = "\
Connection:
  -h, --host HOST          broker host name or IP address (default localhost)
  -p, --port PORT          broker port (default 1883)
  -L, --url URL            mqtt://[user[:password]@]host[:port]/topic (mqtts://
                           for TLS): broker, credentials and topic in one
  -i, --id ID              client id (default umqtt-pub-… / umqtt-sub-…, unique)
  -u, --username USER      user name
  -P, --pw PASSWORD        password (needs -u)
  -k, --keepalive SECONDS  keepalive, 0 to turn it off (default 60)
  -c, --disable-clean-session
                           persistent session: the broker keeps subscriptions
                           and queued QoS 1 messages while away (needs -i)
      --will-topic TOPIC   last will: published by the broker if this client
      --will-payload TEXT  vanishes without disconnecting (payload default
      --will-qos 0|1|2     empty, QoS 0, not retained)
      --will-retain        (Ctrl-C disconnects cleanly, so the broker
                           discards the will; a second Ctrl-C exits at once)
  -d, --debug              log every packet and connection event to stderr
      --help               print this help

TLS (any TLS option, or mqtts://, means TLS; without -p port 8883):
      --cafile FILE        verify the broker with the CA certificates in this
                           PEM file (one, or a bundle); the broker's
                           certificate must name the -h host (an IP address
                           as -h must be one of its IP address names)
      --capath DIR         verify the broker with every CA certificate in DIR
                           (*.pem, *.crt and hashed links as `openssl rehash`
                           makes them; with --cafile: both)
                           Neither: the system trust store (SSL_CERT_FILE and
                           SSL_CERT_DIR choose another), as mosquitto_pub's
                           --tls-use-os-certs
      --cert FILE          client certificate (PEM), for mutual TLS
      --key FILE           its private key (PEM: RSA or EC; the embedded
                           engine: P-256 only), needs --cert
      --tls-version V      tlsv1.2 or tlsv1.3: that version only (default:
                           both)
      --alpn PROTO         offer this ALPN protocol (repeatable); AWS IoT on
                           port 443 needs x-amzn-mqtt-ca
      --tls-engine E       rustls (default): TLS 1.2 and 1.3, RSA and ECDSA,
                           X25519, the system trust store; embedded: what a
                           device's umqtt speaks (TLS 1.3, P-256 key exchange,
                           TLS_AES_128_GCM_SHA256; needs --cafile/--capath),
                           to check from the desktop whether a broker accepts
                           it
      --insecure           do not verify the broker's certificate (dangerous:
                           anyone on the path can read and change the traffic;
                           warns on stderr; not with --cafile/--capath)
A failed handshake exits with status 1 and the reason (not trusted, name
mismatch, expired, no TLS version in common, plain TCP port, ...).

The connection is re-established by itself after it is lost (a broker
restart), with a note on stderr: \"connection lost, reconnecting…\" then
\"reconnected\". The first connection is not retried: if it fails, umqtt exits
with status 1 and the reason (connection refused, not authorised, timeout).
";

/// `umqtt pub --help`.
pub fn pub_usage() -> String {
    format!(
        "\
Usage: umqtt pub -t TOPIC (-m MESSAGE | -l | -n | -s | -f FILE) [options]

Publishes one message, or one per line of stdin, then disconnects. A lost
connection is re-established (a QoS 1 message is then sent again) until -W
seconds have passed: then umqtt gives up with status 1.

Message:
  -t, --topic TOPIC        topic to publish to (required)
  -m, --message MESSAGE    the message
  -l, --stdin-line         each line of stdin is a message (empty lines are
                           skipped; a trailing \\r is removed)
  -n, --null-message       an empty message (with -r: clears a retained one)
  -s, --stdin-file         all of stdin is one message
  -f, --file FILE          the contents of FILE are the message
  -q, --qos 0|1            quality of service (default 0; publishing with QoS 2
                           is not supported)
  -r, --retain             the broker keeps the message for later subscribers
  -W SECONDS               give up after SECONDS, counted from the start (with
                           -l or --repeat: per message; default 30)
      --repeat N           publish the message N times (not with -l)
      --repeat-delay S     wait S seconds (fractions allowed) between them,
                           looking after the connection meanwhile
      --max-inflight N     with -l at QoS 1: up to N messages sent and not yet
                           acknowledged (default 20). Every line is kept (in
                           memory, 16 MiB, or in the --outbox file) until
                           acknowledged and sent again after a lost
                           connection; when memory is full, reading stdin
                           waits
      --outbox FILE        keep every message in FILE (created if missing)
                           until the broker has it: accepted at once, sent
                           in order through the window, sent again after a
                           lost connection, and, if umqtt is killed or the
                           power fails, by the next `umqtt pub --outbox FILE`
                           (which sends what is left first). With -d, says
                           \"queued message N\" for each one accepted

{CONNECTION_HELP}"
    )
}

/// `umqtt sub --help`.
pub fn sub_usage() -> String {
    format!(
        "\
Usage: umqtt sub -t FILTER [-t FILTER ...] [options]
       umqtt sub -U FILTER [-U FILTER ...] -c -i ID [options]

Subscribes and prints each message's payload on its own line, until
interrupted, -C messages have been printed or -W seconds have passed (each
exits with status 0). Messages over 16 MiB are skipped with a warning.

Subscription:
  -t, --topic FILTER       topic filter, wildcards allowed (repeatable)
  -q, --qos 0|1|2          subscription QoS (default 0; QoS 2 messages are
                           printed exactly once)
  -v, --verbose            print \"topic payload\" (an empty payload prints
                           \"topic (null)\"; without -v it prints nothing)
  -N                       no newline after each payload (with -v: after
                           \"topic payload\"; with -F: after each message)
  -F FORMAT                print each message as FORMAT (then a newline
                           unless -N): %t topic, %p payload, %q QoS, %r
                           retain, %l payload length, %I time (ISO 8601,
                           UTC), %U Unix time with nanoseconds, %x / %X
                           payload in hex, %j the message as one JSON
                           object, %% a percent sign; \\n \\t \\r \\e \\0 \\\\
  -R                       do not print stale retained messages (those the
                           broker kept and sends on subscribing)
  -T, --filter-out FILTER  do not print messages whose topic matches FILTER
                           (wildcards allowed; repeatable)
  -C COUNT                 exit after COUNT messages (printed ones)
  -W SECONDS               exit after SECONDS seconds, counted from the start
                           (status 1 if not even subscribed by then)
  -E                       exit (status 0) once every subscription is
                           acknowledged: with -c -i ID, sets up a persistent
                           session that queues messages from then on
  -U, --unsubscribe FILTER
                           unsubscribe from FILTER (repeatable), after the -t
                           subscriptions; with -c -i ID it ends a persistent
                           session's subscription. Without -t, exits once done
      --remove-retained    clear each retained message printed: publish an
                           empty retained message (QoS 1) to its topic (those
                           hidden by -R or -T are kept). The broker then
                           sends that empty message too (-v prints
                           \"topic (null)\"). Careful with wildcards

{CONNECTION_HELP}"
    )
}

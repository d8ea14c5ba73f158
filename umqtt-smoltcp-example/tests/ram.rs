//! The RAM table of docs/PORTING.md: what the client and the stack take, by
//! `size_of`, on the machine the test runs on (run with `--nocapture` to see
//! it). Buffers are the user's and come on top, byte for byte.

use std::mem::size_of;

use umqtt_robust::RobustClient;
use umqtt_simple::Client;
use umqtt_smoltcp_example::{MsClock, TapClient, TapRobustClient, TapStack, TapWait};
use umqtt_transports::Spin;
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};

#[test]
fn ram_table() {
    let pointer = size_of::<usize>();
    let rows: [(&str, usize); 9] = [
        (
            "umqtt-simple `Client` borrowing the stack (`&mut S`), `Spin`",
            size_of::<Client<'static, &mut TapStack, MsClock, Spin>>(),
        ),
        (
            "umqtt-robust `RobustClient` borrowing the stack, `Spin`, 256-byte subscription store",
            size_of::<RobustClient<'static, &mut TapStack, MsClock, Spin>>(),
        ),
        (
            "umqtt-simple `Client` owning smoltcp-nal's stack, `TapWait`",
            size_of::<TapClient<'static>>(),
        ),
        (
            "umqtt-robust `RobustClient` owning smoltcp-nal's stack, `TapWait`",
            size_of::<TapRobustClient<'static>>(),
        ),
        (
            "smoltcp-nal `NetworkStack` (interface, socket set header, TAP device)",
            size_of::<TapStack>(),
        ),
        (
            "smoltcp `SocketStorage` (one per socket, in the socket set)",
            size_of::<smoltcp::iface::SocketStorage<'static>>(),
        ),
        (
            "umqtt-simple `Client` over `StdTcpStack`, `StdWait`",
            size_of::<Client<'static, StdTcpStack, StdClock, StdWait>>(),
        ),
        (
            "umqtt-robust `RobustClient` over `StdTcpStack`, `StdWait`",
            size_of::<RobustClient<'static, StdTcpStack, StdClock, StdWait>>(),
        ),
        ("`TapWait`", size_of::<TapWait>()),
    ];
    println!("sizes on this target ({}-bit pointers):", pointer * 8);
    println!("| what | bytes |\n| --- | ---: |");
    for (what, bytes) in rows {
        println!("| {what} | {bytes} |");
        assert!(bytes > 0 || what.contains("Wait"));
    }
    // The client itself is small: the buffers and the stack dominate.
    assert!(size_of::<Client<'static, &mut TapStack, MsClock, Spin>>() < 512);
}

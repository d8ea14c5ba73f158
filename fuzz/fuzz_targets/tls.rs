#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    umqtt_fuzz_harness::tls::check(data);
});

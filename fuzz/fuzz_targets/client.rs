#![no_main]

use libfuzzer_sys::fuzz_target;
use umqtt_fuzz::Trace;

fuzz_target!(|data: &[u8]| umqtt_fuzz::client::run(data, &mut Trace::from_env()));

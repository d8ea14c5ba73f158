#![no_main]

use libfuzzer_sys::fuzz_target;
use umqtt_fuzz_harness::Trace;

fuzz_target!(
    |data: &[u8]| umqtt_fuzz_harness::asynch::run_robust_with_outbox(data, &mut Trace::from_env())
);

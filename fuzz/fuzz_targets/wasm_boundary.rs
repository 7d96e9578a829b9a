//! A guest's batch made of the fuzzer's bytes, through the host's lifting,
//! validation and carrier conversion.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_runtime::fuzzing::lift_guest_batch(data);
});

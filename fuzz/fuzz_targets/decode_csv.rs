//! The Csv decoder on one value made of the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice_fuzz::decode_one(sluice_format::ValueFormat::Csv, data);
});

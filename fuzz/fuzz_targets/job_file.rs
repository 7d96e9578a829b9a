//! The job-file parser on text made of the fuzzer's bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_config::Job::parse(std::path::Path::new("/fuzz/job.toml"), text);
    }
});

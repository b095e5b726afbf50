//! Fuzzes device profile parsing (YAML → validated profile) on arbitrary text: a profile is
//! either accepted or refused with at least one error; it never panics.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vigil_profile::parse_profile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = parse_profile(Path::new("fuzz.yaml"), text) {
        assert!(!errors.is_empty(), "refused without a reason");
    }
});

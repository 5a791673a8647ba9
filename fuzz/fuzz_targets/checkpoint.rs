//! The checkpoint loader on arbitrary bytes: a checkpoint or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = scratchnet::checkpoint::from_bytes(data);
});

//! The IDX reader on arbitrary bytes, raw and gzip, named .gz or not: it must
//! return an array or an error, never panic or allocate from an unchecked header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, bytes)) = data.split_first() else {
        return;
    };
    let named_gz = flag & 1 == 1;
    if flag & 2 == 2 {
        // Also feed the bytes wrapped in a valid gzip stream.
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        let gz = enc.finish().unwrap();
        let _ = scratchnet::data::idx::parse_idx(&gz, named_gz);
    } else {
        let _ = scratchnet::data::idx::parse_idx(bytes, named_gz);
    }
});

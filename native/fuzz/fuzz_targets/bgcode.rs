//! Binary G-code block decoding (deflate, heatshrink, MeatPack, metadata, thumbnails): the input
//! follows a valid file header that declares no block checksums, so the fuzzer reaches the
//! decoders instead of stopping at a CRC mismatch. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threedpai_native::{bgcode, gcode};

fuzz_target!(|data: &[u8]| {
    let mut file = b"GCDE\x01\x00\x00\x00\x00\x00".to_vec(); // version 1, checksum type 0 (none)
    file.extend_from_slice(data);
    let _ = bgcode::read_metadata(&file);
    if let Ok(decoded) = bgcode::read(&file) {
        let _ = gcode::lex(&decoded.gcode, 0, 1);
    }
    if let Ok(source) = gcode::Source::from_bytes(file, "fuzz") {
        let _ = gcode::parse(&source, &Default::default());
    }
});

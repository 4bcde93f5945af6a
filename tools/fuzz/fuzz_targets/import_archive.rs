#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rules_image_tool::fuzzing::import_archive(data));

//! Fuzz target: `Message::decode` must never panic, and whatever it accepts
//! must encode again and decode back. Equality is checked after one
//! normalising pass: fixed-width strings (port names) are decoded lossily,
//! so arbitrary bytes there come back as U+FFFD once, then stay put.
#![no_main]

use gemelo::openflow::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((xid, msg)) = Message::decode(data) {
        let once = Message::decode(&msg.encode(xid)).expect("re-encoded message decodes");
        let twice = Message::decode(&once.1.encode(xid)).expect("re-encoded message decodes");
        assert_eq!(once, twice);
    }
});

//! Fuzz target: `Message::decode` must never panic, and whatever it accepts
//! must encode again without panicking and decode to the same value.
#![no_main]

use gemelo::openflow::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((xid, msg)) = Message::decode(data) {
        let bytes = msg.encode(xid);
        let again = Message::decode(&bytes).expect("re-encoded message decodes");
        assert_eq!(again, (xid, msg));
    }
});

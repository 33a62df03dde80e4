//! Malformed OpenFlow from a "switch" never takes the controller down.
//!
//! A real `gemelo serve` listens on a private Unix socket; raw connections send it
//! wrong versions, garbage and lying length fields. Each bad peer is answered with
//! an OpenFlow error or dropped, and the controller keeps serving.

use gemelo_tests::controller::{temp_dir, ControllerProc};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(path: &str) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect to gemelo");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_msg(s: &mut UnixStream) -> Option<(u8, u8, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h).ok()?;
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(8)];
    s.read_exact(&mut body).ok()?;
    Some((h[0], h[1], body))
}

fn closed(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn bad_switches_get_errors_and_the_controller_survives() {
    if !gemelo_tests::controller::gemelo_bin().exists() {
        eprintln!("skipping: gemelo binary not built (cargo build -p gemelo)");
        return;
    }
    let dir = temp_dir("robust");
    let sock = dir.join("of.sock").display().to_string();
    let listen = format!("unix:{sock}");
    let ctl = ControllerProc::start(&dir, &["--no-default-listeners", "--listen", &listen])
        .expect("controller");

    // 1. An OpenFlow 1.0-only switch: gemelo says HELLO (1.3 bitmap), then HELLO_FAILED.
    let mut s = connect(&sock);
    let (version, kind, _) = read_msg(&mut s).expect("gemelo's HELLO");
    assert_eq!((version, kind), (4, 0));
    s.write_all(&[0x01, 0x00, 0x00, 0x08, 0, 0, 0, 1]).unwrap();
    let (_, kind, body) = read_msg(&mut s).expect("an error for the old version");
    assert_eq!(kind, 1, "OFPT_ERROR");
    assert_eq!(
        &body[..4],
        &[0, 0, 0, 0],
        "OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE"
    );
    assert!(closed(&mut s));

    // 2. Garbage instead of a HELLO.
    let mut s = connect(&sock);
    read_msg(&mut s).expect("gemelo's HELLO");
    s.write_all(&[0xde; 64]).unwrap();
    assert!(closed(&mut s), "garbage must end the session");

    // 3. A good HELLO, then a header whose length is shorter than a header.
    let mut s = connect(&sock);
    read_msg(&mut s).expect("gemelo's HELLO");
    s.write_all(&[0x04, 0x00, 0x00, 0x08, 0, 0, 0, 2]).unwrap();
    let (_, kind, _) = read_msg(&mut s).expect("FEATURES_REQUEST");
    assert_eq!(kind, 5);
    s.write_all(&[0x04, 0x06, 0x00, 0x04, 0, 0, 0, 3]).unwrap();
    assert!(closed(&mut s), "a lying length must end the session");

    // 4. A truncated FEATURES_REPLY (valid frame, bad body).
    let mut s = connect(&sock);
    read_msg(&mut s).expect("gemelo's HELLO");
    s.write_all(&[0x04, 0x00, 0x00, 0x08, 0, 0, 0, 2]).unwrap();
    read_msg(&mut s).expect("FEATURES_REQUEST");
    s.write_all(&[0x04, 0x06, 0x00, 0x0c, 0, 0, 0, 1, 0, 0, 0, 1])
        .unwrap();
    assert!(
        closed(&mut s),
        "an undecodable FEATURES_REPLY must end the handshake"
    );

    // The controller is still alive and serving.
    let health = ctl
        .get("/api/v1/health")
        .expect("health after bad switches");
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["switches"], 0,
        "no bad peer may register as a switch"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! A stand-in for the agent's status API (`GET /pods`) on 127.0.0.1, for CLI tests that need
//! an agent to answer without running one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A one-file HTTP server on 127.0.0.1 answering every request with `body` (JSON), standing
/// in for the agent's status API. Returns `host:port`.
pub fn fake_status_api(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

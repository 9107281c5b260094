//! lgsp's HTTP server against clients that misbehave: a client that never finishes its
//! headers is disconnected after `http.header_timeout`; a body that does not arrive
//! within `http.body_timeout` is answered 408, one over the limit 413, before any
//! handler runs; the server keeps answering others meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lgsp_core::config::HttpConfig;
use lgsp_http::{AppState, BodyLimits};
use tokio_util::sync::CancellationToken;

async fn server(body: BodyLimits) -> (String, CancellationToken) {
    let http = HttpConfig {
        listen: "127.0.0.1:0".into(),
        header_timeout: lgsp_core::config::Duration::from_secs(1),
        ..Default::default()
    };
    let state = AppState {
        body,
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let (addr, _task) = lgsp_http::serve(&http, state, stop.clone()).await.unwrap();
    (addr.to_string(), stop)
}

/// Send `head` (and nothing more), then read until the server answers or closes.
fn send_and_read(addr: &str, head: &[u8], wait: Duration) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(head).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                    break;
                }
            }
            Err(e) => panic!("no answer and no close within {wait:?}: {e}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// [`send_and_read`] off the runtime's threads.
async fn exchange(addr: &str, head: &[u8], wait: Duration) -> (String, Duration) {
    let (addr, head) = (addr.to_owned(), head.to_vec());
    tokio::task::spawn_blocking(move || send_and_read(&addr, &head, wait))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (addr, _stop) = server(BodyLimits::default()).await;
    let (got, took) = exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        took < Duration::from_secs(5),
        "held for {took:?}, answered {got:?}"
    );
    assert!(!got.contains("200 OK"), "{got}");
    // Others are served meanwhile and after.
    let (ok, _) = exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_408_and_a_large_one_413_before_any_handler() {
    let (addr, _stop) = server(BodyLimits {
        max: 1000,
        timeout: Duration::from_secs(1),
    })
    .await;
    let (got, took) = exchange(
        &addr,
        b"POST /admin/v1/audit/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"note\":",
        Duration::from_secs(10),
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"code\":\"request_timeout\""), "{got}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Declared too large: refused without reading it.
    let (got, _) = exchange(
        &addr,
        b"POST /admin/v1/audit/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    // Chunked, with no length: refused once past the limit.
    let mut chunked =
        b"POST /api/v1/messages/bizreg.x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(b"64\r\n");
        chunked.extend_from_slice(&[b'x'; 100]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (got, _) = exchange(&addr, &chunked, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("\"code\":\"payload_too_large\""), "{got}");
}

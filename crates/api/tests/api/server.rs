//! The server on a socket: slow and idle connections are cut off, oversized requests get
//! the error shape.

use crate::helpers::*;
use axum::body::Body;
use axum::http::Request;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn slow_and_idle_connections_are_cut_off() {
    let app = TestApp::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_api::serve_with(
        listener,
        app.router.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_millis(300),
    ));
    // A head that never ends: the server closes the connection.
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a slow head is cut off");
    // A kept-alive connection left idle after a request: closed as well.
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "an idle connection is closed");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn oversized_paths_and_headers_get_the_error_shape() {
    let app = TestApp::sqlite().await;
    let long = format!("/v1/members/{}", "x".repeat(9000));
    let r = app.call("GET", &long, None).await;
    assert_eq!(r.status, 414);
    assert_eq!(r.code(), "uri_too_long", "{}", r.text);
    let req = Request::get("/v1/members/m")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("x-padding", "y".repeat(17 * 1024))
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, 431);
    assert_eq!(r.code(), "headers_too_large", "{}", r.text);
    // Many small headers as well.
    let mut req =
        Request::get("/v1/members/m").header("authorization", format!("Bearer {}", app.admin));
    for n in 0..150 {
        req = req.header(format!("x-h{n}"), "1");
    }
    let r = app.send(req.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 431);
    assert_eq!(r.code(), "headers_too_large", "{}", r.text);
}

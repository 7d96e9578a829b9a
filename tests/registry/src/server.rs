//! The HTTP side: a `tiny_http` server and the thread that answers its requests.

use std::sync::atomic::{AtomicBool, Ordering};

use tiny_http::{Header, Server};

use crate::registry::Registry;
use crate::routes::{self, CONTENT_TYPE, Request, Response};

/// Answers requests one at a time against one registry until `stop` is set and the server
/// unblocked.
pub(crate) fn serve(server: &Server, stop: &AtomicBool) {
    let mut registry = Registry::default();
    loop {
        match server.recv() {
            Ok(request) => answer(&mut registry, request),
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(_) => continue,
        }
    }
}

/// Stops a `serve` loop running on another thread.
pub(crate) fn stop(server: &Server, stop: &AtomicBool) {
    stop.store(true, Ordering::SeqCst);
    server.unblock();
}

fn answer(registry: &mut Registry, mut request: tiny_http::Request) {
    let mut body = String::new();
    let response = match request.as_reader().read_to_string(&mut body) {
        Ok(_) => {
            let header = |name: &'static str| {
                request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv(name))
                    .map(|h| h.value.as_str().to_owned())
            };
            let (content_type, accept) = (header("Content-Type"), header("Accept"));
            routes::handle(
                registry,
                &Request {
                    method: request.method().as_str(),
                    url: request.url(),
                    content_type: content_type.as_deref(),
                    accept: accept.as_deref(),
                    body: &body,
                },
            )
        }
        Err(e) => Response {
            status: 400,
            body: serde_json::json!({
                "error_code": 400,
                "message": format!("the request body is not UTF-8 text: {e}"),
            })
            .to_string(),
        },
    };
    let content_type = Header::from_bytes("Content-Type", CONTENT_TYPE).expect("a valid header");
    let reply = tiny_http::Response::from_string(response.body)
        .with_status_code(response.status)
        .with_header(content_type);
    // The client may have gone away; nothing to do about it here.
    let _ = request.respond(reply);
}

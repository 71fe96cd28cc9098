//! A tiny HTTP/1.1 responder for `/metrics` and `/health`, on a thread of its own that reads
//! only what the event loop published. One connection at a time (the others wait in the
//! listen backlog), a bounded request, short timeouts, and the connection closed after each
//! answer: a monitoring endpoint needs no more, and so cannot cost the node more.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::debug;

use super::metrics::Published;

/// The largest request read; a longer one is refused.
const REQUEST_BYTES_MAX: usize = 8 << 10;
/// How long a connection may take to send its request, or to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `listener` on a new thread until the process ends.
pub(super) fn spawn(
    listener: TcpListener,
    published: Published,
    max_apply_lag: u64,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("metrics-http".to_owned()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    if let Err(error) = answer(stream, &published, max_apply_lag) {
                        debug!(%error, "metrics connection ended early");
                    }
                }
                Err(error) => debug!(%error, "metrics listener could not accept"),
            }
        }
    })
}

fn answer(mut stream: TcpStream, published: &Published, max_apply_lag: u64) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let response = match read_request_line(&mut stream)? {
        Some(line) => respond(&line, published, max_apply_lag),
        None => Response::plain(431, "Request Header Fields Too Large", "request too large\n"),
    };
    stream.write_all(&response.into_bytes())?;
    stream.flush()
}

/// Reads the request up to its blank line and returns its first line; `None` if it is longer
/// than [`REQUEST_BYTES_MAX`].
fn read_request_line(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut request = Vec::with_capacity(512);
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
        if request.len() > REQUEST_BYTES_MAX {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&request);
    Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
}

fn respond(request_line: &str, published: &Published, max_apply_lag: u64) -> Response {
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Response {
            status: 200,
            reason: "OK",
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: published.metrics_text(),
        },
        ("GET", "/health") => match published.health(max_apply_lag) {
            (true, reason) => Response::plain(200, "OK", &format!("{reason}\n")),
            (false, reason) => Response::plain(503, "Service Unavailable", &format!("{reason}\n")),
        },
        ("GET", _) => Response::plain(404, "Not Found", "try /metrics or /health\n"),
        _ => Response::plain(405, "Method Not Allowed", "GET only\n"),
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn plain(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        [head.into_bytes(), self.body.into_bytes()].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_method_and_path() {
        let published = Published::default();
        assert_eq!(respond("GET /nowhere HTTP/1.1", &published, 10).status, 404);
        assert_eq!(respond("POST /metrics HTTP/1.1", &published, 10).status, 405);
        let health = respond("GET /health HTTP/1.1", &published, 10);
        assert_eq!((health.status, health.body.as_str()), (503, "starting: no figures yet\n"));
        assert_eq!(respond("GET /metrics?x=1 HTTP/1.1", &published, 10).status, 200);
    }
}

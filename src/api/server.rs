//! The HTTP server around the warp routes: hyper-util with a connection cap (accepting waits
//! while the cap is reached, so load queues in the kernel backlog, not in memory), a header read
//! timeout against slow clients, graceful shutdown that finishes in-flight requests, and a
//! lingering close (see `linger`).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::Filter;
use warp::hyper;
use warp::reply::Response;

#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

pub async fn serve<F>(
    routes: F,
    listener: TcpListener,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send,
{
    let service = warp::service(routes);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (io, parked) = Lingering::new(stream);
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), closing_when_body_unread(service.clone()));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            // hyper has dropped the connection's io by now, handing the socket back
            if let Ok(stream) = parked.await {
                linger(stream).await;
            }
            drop(slot);
        });
    }
    drop(listener);
    // In-flight requests finish (each is bounded: body and database timeouts are a few seconds).
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within 10 s of shutdown");
    }
}

/// Wraps the routes: when a handler answers without reading the whole request body (a 401, 413,
/// 415 or 405 given before the body, or a 413 in the middle of it), the answer carries
/// `Connection: close`. hyper closes such a connection after answering (the rest of the body
/// would be read as the next request); a client not told so reuses it and fails.
fn closing_when_body_unread<S>(
    routes: S,
) -> impl hyper::service::Service<
    warp::http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
where
    S: tower_service::Service<
            warp::http::Request<ReadToEnd>,
            Response = Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static,
{
    hyper::service::service_fn(move |req: warp::http::Request<hyper::body::Incoming>| {
        use hyper::body::Body as _;
        let read = Arc::new(AtomicBool::new(req.body().is_end_stream()));
        let req = req.map(|body| ReadToEnd { body, read: read.clone() });
        let mut routes = routes.clone();
        let answer = tower_service::Service::call(&mut routes, req);
        async move {
            let mut resp = answer.await?;
            if !read.load(Ordering::Acquire) {
                resp.headers_mut().insert("connection", warp::http::HeaderValue::from_static("close"));
            }
            Ok(resp)
        }
    })
}

/// A request body that notes when it has been read to its end.
pub struct ReadToEnd {
    body: hyper::body::Incoming,
    read: Arc<AtomicBool>,
}

impl hyper::body::Body for ReadToEnd {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// How long, and how much, a closing connection's unread input is read and thrown away.
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_IDLE: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 1 << 30;

/// The socket of one connection. When hyper is done with it (it answered and will not read the
/// rest of a request body, e.g. a 413), the socket is handed back for `linger` instead of being
/// closed: closing a socket with unread input makes the kernel send a reset, and a client still
/// writing its body (most write it all before reading) then gets a broken pipe instead of the
/// answer. A shipper that sees a connection error retries the same batch forever; one that sees
/// 413 splits it.
struct Lingering {
    stream: Option<tokio::net::TcpStream>,
    back: Option<tokio::sync::oneshot::Sender<tokio::net::TcpStream>>,
}

impl Lingering {
    fn new(stream: tokio::net::TcpStream) -> (Lingering, tokio::sync::oneshot::Receiver<tokio::net::TcpStream>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Lingering { stream: Some(stream), back: Some(tx) }, rx)
    }

    fn stream(&mut self) -> &mut tokio::net::TcpStream {
        self.stream.as_mut().expect("stream present until drop")
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if let (Some(s), Some(tx)) = (self.stream.take(), self.back.take()) {
            let _ = tx.send(s);
        }
    }
}

impl tokio::io::AsyncRead for Lingering {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.stream()).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Lingering {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.stream()).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.stream()).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.stream()).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}

/// What nginx calls a lingering close: half-close (the client sees the end of the answer), then
/// read and discard what the client still sends, for a bounded time and size, then close.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 64 * 1024];
    let mut discarded = 0u64;
    while discarded < LINGER_BYTES {
        let wait = LINGER_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n as u64,
            _ => break, // closed by the client, an error, or quiet for too long
        }
    }
    if discarded > 0 {
        tracing::debug!(discarded, "discarded the unread rest of a request before closing");
    }
}

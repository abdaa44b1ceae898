//! A TCP relay in front of the mock's token endpoint that the soak can take down: while it is
//! down its port refuses connections, as a token endpoint that is unreachable does.
//!
//! Connections already open when it goes down are closed once idle, so keyward's pooled
//! connections cannot bypass the outage. A connection waiting for an answer is never cut: the
//! mock may already have rotated the token, and losing that answer would end the lineage, which
//! only the injected `drop_after_issue` fault may do. A new request arriving on an open
//! connection while the relay is down is not forwarded (the connection is closed instead), so
//! the token in it was not spent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Quiet this long after an answer, a connection counts as idle (the mock writes its small
/// token answers in one piece).
const IDLE_AFTER_ANSWER: Duration = Duration::from_millis(300);

pub(crate) struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Result<Arc<Self>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let relay = Arc::new(Self { addr, up });
        tokio::spawn(accept_loop(relay.clone(), listener, upstream));
        Ok(relay)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    pub(crate) fn is_up(&self) -> bool {
        *self.up.borrow()
    }
}

async fn accept_loop(relay: Arc<Relay>, first: TcpListener, upstream: SocketAddr) {
    let mut listener = Some(first);
    let mut up = relay.up.subscribe();
    loop {
        let is_up = *up.borrow_and_update();
        match (is_up, listener.take()) {
            (true, Some(bound)) => {
                tokio::select! {
                    accepted = bound.accept() => {
                        if let Ok((client, _)) = accepted {
                            tokio::spawn(relay_connection(client, upstream, relay.up.subscribe()));
                        }
                        listener = Some(bound);
                        continue;
                    }
                    changed = up.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Down: the listener is dropped, so the port refuses connections.
                        listener = (*up.borrow()).then_some(bound);
                        continue;
                    }
                }
            }
            (true, None) => match TcpListener::bind(relay.addr).await {
                Ok(bound) => listener = Some(bound),
                Err(e) => {
                    // Someone else took the port while it was free; try again shortly.
                    eprintln!("soak: relay cannot listen on {} again yet: {e}", relay.addr);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            (false, _) => {
                if up.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Which way the last bytes went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Request,
    Answer,
}

async fn relay_connection(client: TcpStream, upstream: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, mut buf_client) = (client, vec![0u8; 16 * 1024]);
    let mut buf_server = vec![0u8; 16 * 1024];
    let mut last = Last::Nothing;
    let mut quiet_since = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            read = from_client.read(&mut buf_client) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if !*up.borrow() && last != Last::Request {
                    // A new request while down: not forwarded, so its token was not spent.
                    return;
                }
                let Some(bytes) = buf_client.get(..n) else { return };
                if server.write_all(bytes).await.is_err() {
                    return;
                }
                last = Last::Request;
                quiet_since = tokio::time::Instant::now();
            }
            read = server.read(&mut buf_server) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let Some(bytes) = buf_server.get(..n) else { return };
                if from_client.write_all(bytes).await.is_err() {
                    return;
                }
                last = Last::Answer;
                quiet_since = tokio::time::Instant::now();
            }
            _ = tick.tick() => {
                let idle = last != Last::Request && quiet_since.elapsed() >= IDLE_AFTER_ANSWER;
                if !*up.borrow() && idle {
                    return;
                }
            }
            changed = up.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0
                            || socket
                                .write_all(buf.get(..n).unwrap_or_default())
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Ok(addr)
    }

    /// Bytes pass while up; down, the port refuses and an open idle connection is closed;
    /// up again, it serves.
    #[tokio::test]
    async fn relays_refuses_and_recovers() -> Result<()> {
        let relay = Relay::start(echo_server().await?).await?;
        let mut open = TcpStream::connect(relay.addr).await?;
        open.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");

        relay.set_up(false);
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), open.read_to_end(&mut rest)).await;
        assert!(
            matches!(closed, Ok(Ok(0))),
            "the idle connection was closed"
        );
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(relay.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the port refuses while down");

        relay.set_up(true);
        let mut again = None;
        for _ in 0..100 {
            if let Ok(stream) = TcpStream::connect(relay.addr).await {
                again = Some(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut again = again.ok_or_else(|| anyhow::anyhow!("the relay did not come back"))?;
        again.write_all(b"pong").await?;
        again.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok(())
    }
}

//! A tunnel: two connections joined both ways after a protocol switch (WebSocket), closed when
//! either side closes or neither moves for the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Copies between `a` and `b` until one ends, fails, or the tunnel is idle for `idle`.
pub(crate) async fn join<A, B>(a: A, b: B, idle: Duration)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let moved = Arc::new(AtomicBool::new(false));
    let mut a = Noted {
        inner: a,
        moved: moved.clone(),
    };
    let mut b = Noted {
        inner: b,
        moved: moved.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            _ = &mut copy => return,
            () = tokio::time::sleep(idle) => {
                // Looked at once per period: a tunnel that moved at all in it lives on.
                if !moved.swap(false, Ordering::Relaxed) {
                    tracing::debug!("closing an idle tunnel");
                    return;
                }
            }
        }
    }
}

pin_project! {
    /// A connection that notes when bytes cross it.
    struct Noted<T> {
        #[pin]
        inner: T,
        moved: Arc<AtomicBool>,
    }
}

impl<T: AsyncRead> AsyncRead for Noted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite> AsyncWrite for Noted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved.store(true, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

//! File bodies by sendfile(2): file pages go from the page cache to the
//! socket without passing through user space.
//!
//! monoio offers no offset-taking sendfile or splice, so this drives the
//! system call itself on a non-blocking socket and waits for writability
//! through the runtime between calls: a PollAdd on io_uring, the epoll
//! readiness on the legacy driver. The worker thread never blocks on the
//! socket, and a client that stops reading is cut off by the write timeout.

use std::fs::File;
use std::io;
use std::time::Duration;

use monoio::net::TcpStream;

use crate::sys;

/// Largest single sendfile call: bounds how long one connection can keep
/// the worker busy before others get a turn.
const MAX_CHUNK: usize = 4 << 20;

/// Sends `len` bytes of `file` starting at `offset` to `stream`.
///
/// Fails with `TimedOut` when the socket stays unwritable for `idle`, and
/// with `UnexpectedEof` when the file is shorter than promised.
pub(crate) async fn send_file(
    stream: &TcpStream,
    file: &File,
    offset: u64,
    len: u64,
    idle: Duration,
) -> io::Result<()> {
    let was_nonblocking = sys::set_nonblocking(stream, true)?;
    let result = send_loop(stream, file, offset, len, idle).await;
    // io_uring operations on this socket expect the mode they found.
    if !was_nonblocking {
        sys::set_nonblocking(stream, false)?;
    }
    result
}

async fn send_loop(
    stream: &TcpStream,
    file: &File,
    mut offset: u64,
    len: u64,
    idle: Duration,
) -> io::Result<()> {
    let end = offset.saturating_add(len);
    let mut turns = 0u32;
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(MAX_CHUNK)
            .min(MAX_CHUNK);
        match sys::sendfile(stream, file, offset, want) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                offset += n as u64;
                turns += 1;
                // Yield now and then so a fast reader cannot starve the
                // other connections of this worker.
                if turns.is_multiple_of(16) {
                    yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match monoio::time::timeout(idle, stream.writable(false)).await {
                    Ok(r) => r?,
                    Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Lets the runtime run its other tasks before this one goes on: a busy
/// connection must not starve the rest of its worker.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

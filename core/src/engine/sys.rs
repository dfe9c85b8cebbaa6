//! The system calls the engine drives itself on non-blocking sockets:
//! monoio offers neither an offset-taking sendfile nor readiness-based
//! reads into a caller's buffer. All of the engine's unsafe code is here.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use bytes::BytesMut;

/// Puts the socket in non-blocking mode; the engine only ever calls the
/// system calls below after the runtime said the socket was ready.
pub(super) fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor owned by the caller for this call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives into the spare capacity of `buf` (at most `max` bytes).
pub(super) fn recv(fd: &impl AsRawFd, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < max {
        buf.reserve(max);
    }
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: `spare` is writable memory of at least `want` bytes owned by
    // `buf`; recv writes at most `want` bytes into it.
    let n = unsafe { libc::recv(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sends bytes; `more` tells the kernel a file body follows (MSG_MORE), so
/// a piece header and its block leave in one segment.
pub(super) fn send(fd: &impl AsRawFd, bytes: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Sends `len` bytes of `file` from `offset` without passing them through
/// user space.
pub(super) fn sendfile(
    fd: &impl AsRawFd,
    file: &File,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    let mut off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: both descriptors are open for the duration of the call; the
    // kernel writes only to `off`.
    let n = unsafe { libc::sendfile(fd.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

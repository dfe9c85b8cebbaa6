//! The crate's only unsafe code: the two system calls monoio does not wrap.
//!
//! `sendfile(2)` with a file offset (monoio's splice has none) and the
//! `O_NONBLOCK` toggle it needs on io_uring sockets, which monoio leaves in
//! blocking mode. Each call takes borrowed owners of its descriptors, so a
//! descriptor cannot be closed while the call runs.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Copies up to `count` bytes of `file` from `offset` to `socket` inside the
/// kernel; returns how many bytes went.
///
/// On a non-blocking socket whose buffer is full it fails with
/// `WouldBlock`; the caller waits for writability and calls again.
pub(crate) fn sendfile(
    socket: &impl AsRawFd,
    file: &File,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
    // SAFETY: both descriptors are open for the whole call (they are
    // borrowed from their live owners), `off` is a valid, exclusively
    // borrowed off_t, and sendfile writes nothing else in our memory.
    let sent = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// Sets or clears `O_NONBLOCK` on `fd`; returns whether it was set before.
pub(crate) fn set_nonblocking(fd: &impl AsRawFd, on: bool) -> io::Result<bool> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL reads the status flags of an open descriptor (borrowed
    // from its owner) and touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let was = flags & libc::O_NONBLOCK != 0;
    if was != on {
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: as above; F_SETFL only changes the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(was)
}

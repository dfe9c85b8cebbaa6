//! The system calls bay makes itself on sockets, through rustix: monoio
//! wraps neither an offset-taking sendfile(2) nor readiness-driven reads
//! into a caller's buffer, which the HTTP server's file bodies and the
//! peer engine both need.
//!
//! Callers put a socket in non-blocking mode, wait for readiness through
//! the runtime, then call these; `WouldBlock` means "wait again". Each
//! call borrows its descriptors from their live owners for its duration.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use bytes::BytesMut;
use rustix::fs::OFlags;
use rustix::net::{RecvFlags, SendFlags};

/// The descriptor of `owner`, borrowed for as long as `owner` is.
fn borrowed(owner: &impl AsRawFd) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `owner`, which the returned borrow
    // keeps alive (monoio's sockets implement only `AsRawFd`).
    unsafe { BorrowedFd::borrow_raw(owner.as_raw_fd()) }
}

/// Sets or clears `O_NONBLOCK`; returns whether it was set before.
pub fn set_nonblocking(socket: &impl AsRawFd, on: bool) -> io::Result<bool> {
    let fd = borrowed(socket);
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let was = flags.contains(OFlags::NONBLOCK);
    if was != on {
        rustix::fs::fcntl_setfl(fd, flags ^ OFlags::NONBLOCK)?;
    }
    Ok(was)
}

/// Receives at most `max` bytes into the spare capacity of `buf`.
pub fn recv_into(socket: &impl AsRawFd, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    let spare = spare.get_mut(..want).unwrap_or_default();
    let ((filled, _), _) = rustix::net::recv(borrowed(socket), spare, RecvFlags::empty())?;
    let n = filled.len();
    // SAFETY: recv initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sends bytes; `more` tells the kernel a file body follows (MSG_MORE), so
/// a header and its body leave in one segment.
pub fn send(socket: &impl AsRawFd, bytes: &[u8], more: bool) -> io::Result<usize> {
    let mut flags = SendFlags::NOSIGNAL;
    if more {
        flags |= SendFlags::MORE;
    }
    Ok(rustix::net::send(borrowed(socket), bytes, flags)?)
}

/// Sends up to `count` bytes of `file` from `offset` inside the kernel;
/// returns how many went.
pub fn sendfile(
    socket: &impl AsRawFd,
    file: &File,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = offset;
    Ok(rustix::fs::sendfile(
        borrowed(socket),
        file,
        Some(&mut off),
        count,
    )?)
}

/// Reserves `len` bytes of disk for `file` (posix_fallocate), so that a
/// full disk shows now rather than half-way through a download. File
/// systems that cannot preallocate get a sparse file instead.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => file.set_len(len),
        Err(e) => Err(e.into()),
    }
}

/// Bytes an unprivileged writer may still put on the file system that
/// holds `path` (statvfs: available blocks times the fragment size).
pub fn free_space(path: &std::path::Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Starts writing `len` bytes of `file` at `offset` back to disk now
/// (sync_file_range with SYNC_FILE_RANGE_WRITE), so a later flush has
/// little left to wait for. Only a hint: errors show up at that flush.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor borrowed from its live
    // owner; it touches no memory of ours. (rustix does not wrap it.)
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

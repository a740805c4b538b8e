//! `serve`'s stdin and stdout, read and written by the runtime's own event loop where they are
//! pipes or sockets (what every client that launches a command gives it). Tokio's `stdin()`
//! and `stdout()` hand each read and write to a thread of the blocking pool, and a message
//! then waits for that thread to wake and to wake the runtime back, twice a call.
//! A terminal, a file or anything else falls back to them.

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

pub type Reader = Pin<Box<dyn AsyncRead + Send + Sync>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send + Sync>>;

/// This process's stdin and stdout.
pub fn streams() -> (Reader, Writer) {
    (reader(), writer())
}

#[cfg(unix)]
fn reader() -> Reader {
    use std::os::fd::AsFd as _;
    let pipe = |file| Ok(Box::pin(tokio::net::unix::pipe::Receiver::from_file(file)?) as Reader);
    driven(std::io::stdin().as_fd(), "stdin", pipe, |socket| {
        Box::pin(socket)
    })
    .unwrap_or_else(|| Box::pin(tokio::io::stdin()))
}

#[cfg(unix)]
fn writer() -> Writer {
    use std::os::fd::AsFd as _;
    let pipe = |file| Ok(Box::pin(tokio::net::unix::pipe::Sender::from_file(file)?) as Writer);
    driven(std::io::stdout().as_fd(), "stdout", pipe, |socket| {
        Box::pin(socket)
    })
    .unwrap_or_else(|| Box::pin(tokio::io::stdout()))
}

/// `fd` as the event loop's, through `pipe` or `socket` as it is one or the other.
#[cfg(unix)]
fn driven<T>(
    fd: std::os::fd::BorrowedFd<'_>,
    name: &str,
    pipe: impl FnOnce(std::fs::File) -> std::io::Result<T>,
    socket: impl FnOnce(tokio::net::UnixStream) -> T,
) -> Option<T> {
    let driven = match own(fd)? {
        Stream::Pipe(file) => pipe(file),
        Stream::Socket(fd) => socket_of(fd).map(socket),
    };
    driven
        .inspect_err(|error| tracing::debug!(%error, "{name}: the event loop cannot drive it"))
        .ok()
}

#[cfg(not(unix))]
fn reader() -> Reader {
    Box::pin(tokio::io::stdin())
}

#[cfg(not(unix))]
fn writer() -> Writer {
    Box::pin(tokio::io::stdout())
}

#[cfg(unix)]
enum Stream {
    Pipe(std::fs::File),
    Socket(std::os::fd::OwnedFd),
}

/// A duplicate of `fd` if it is a pipe or a socket. Being a duplicate, it shares the
/// original's non-blocking flag, which the event loop sets: nothing else in `serve` reads
/// stdin or writes stdout, and the other ends (the client's) are files of their own.
#[cfg(unix)]
fn own(fd: std::os::fd::BorrowedFd<'_>) -> Option<Stream> {
    use std::os::unix::fs::FileTypeExt as _;
    let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
    let kind = file.metadata().ok()?.file_type();
    if kind.is_fifo() {
        Some(Stream::Pipe(file))
    } else if kind.is_socket() {
        Some(Stream::Socket(file.into()))
    } else {
        None
    }
}

/// A socket (Node and Electron clients give their children socket pairs, not pipes) as the
/// event loop's. Only reads and writes are made on it, which any stream socket takes.
#[cfg(unix)]
fn socket_of(fd: std::os::fd::OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
    let socket = std::os::unix::net::UnixStream::from(fd);
    socket.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(socket)
}

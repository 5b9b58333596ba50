//! Opening a serial device for the PN532: raw, 8N1, at a standard speed.
//!
//! tokio-serial's own `open` sets the speed through Linux's `termios2`
//! ioctls (`TCGETS2`/`TCSETS2`, for arbitrary rates). qemu-user does not
//! emulate those, so the driver could not be tested for the Pi under qemu,
//! and the PN532 needs no arbitrary rate: its HSU runs at 115200 by
//! default. So the device is set up here with plain POSIX termios, which
//! every kernel and emulator knows, and the descriptor handed to
//! tokio-serial, which then locks it exclusively (`TIOCEXCL` and `flock`).

use std::fs::OpenOptions;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tokio_serial::SerialStream;

/// Opens `path` (a symlink such as `/dev/serial0` is fine) raw at `baud`.
pub(super) fn open(path: &Path, baud: u32) -> io::Result<SerialStream> {
    let speed = speed(baud).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{baud} baud is not a standard serial speed"),
        )
    })?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    raw(file.as_raw_fd(), speed)?;
    // SAFETY: the descriptor is open and ours; TTYPort takes it over and
    // closes it when dropped.
    let port =
        unsafe { <serialport::TTYPort as std::os::fd::FromRawFd>::from_raw_fd(file.into_raw_fd()) };
    SerialStream::try_from(port).map_err(io::Error::from)
}

/// Raw mode (no echo, no line editing, no CR/LF translation, no software
/// flow control), 8 data bits, no parity, one stop bit, receiver on, modem
/// lines ignored; then anything left in the buffers from before is dropped.
fn raw(fd: RawFd, speed: libc::speed_t) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let mut t = MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: `t` is a valid termios to fill in; `fd` is open.
    check(unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) })?;
    // SAFETY: tcgetattr succeeded, so `t` is initialised.
    let mut t = unsafe { t.assume_init() };
    // SAFETY: plain functions over the struct we own.
    unsafe {
        libc::cfmakeraw(&mut t);
        check(libc::cfsetispeed(&mut t, speed))?;
        check(libc::cfsetospeed(&mut t, speed))?;
    }
    t.c_cflag &= !(libc::CSIZE | libc::PARENB | libc::CSTOPB | libc::CRTSCTS);
    t.c_cflag |= libc::CS8 | libc::CLOCAL | libc::CREAD;
    t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
    // At least one byte per read: with VMIN 0 a read of an empty buffer
    // returns 0, which reads as end of file, not "would block".
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: `fd` is open and `t` a complete termios.
    check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) })?;
    check(unsafe { libc::tcflush(fd, libc::TCIOFLUSH) })
}

/// The termios constant for `baud`, if it is a standard rate.
fn speed(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        9_600 => libc::B9600,
        19_200 => libc::B19200,
        38_400 => libc::B38400,
        57_600 => libc::B57600,
        115_200 => libc::B115200,
        230_400 => libc::B230400,
        460_800 => libc::B460800,
        921_600 => libc::B921600,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::speed;

    #[test]
    fn only_standard_speeds_are_offered() {
        assert_eq!(speed(115_200), Some(libc::B115200));
        assert_eq!(speed(9_600), Some(libc::B9600));
        assert_eq!(speed(100_000), None);
    }
}

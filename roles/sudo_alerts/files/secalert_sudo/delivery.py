"""Delivery: syslog datagrams that never block, the direct-mode spool and its sender."""

# _socket, not socket: socket.py also imports selectors and builds its enums, which
# costs more than everything this module does per call.
import _socket as socket
import errno
import os
import time

from secalert_sudo import config

SPOOL_ATTEMPTS = 5  # a sender swaps the spool away at most this often under our feet
SENDER_NICENESS = 19  # the detached sender yields the CPU to sudo and the command
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CHILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/"}


def bump_counter(path, count=1):
    """Count dropped events: the counter file's size is the number of drops not yet
    reported (claim_drops takes them)."""
    if not path or count < 1:
        return
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            os.mkdir(os.path.dirname(path), 0o700)
            fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, b"." * count)
        finally:
            os.close(fd)
    except OSError:
        pass


def drop_count(path):
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def claim_drops(path):
    """Take the drops counted so far, so that each is reported once: ``(count, claim)``.

    The counter is renamed to a name of this process's own (atomic: of two sudo calls at
    once only one gets a count); ``settle_drops`` removes the claim once the report is
    out, or puts the count back. ``(0, None)`` when there is nothing to report (one stat,
    no other system call)."""
    if not path or drop_count(path) == 0:
        return 0, None
    claim = f"{path}.{os.getpid()}.claim"
    try:
        os.rename(path, claim)
        return drop_count(claim), claim
    except OSError:
        return 0, None


def settle_drops(path, claim, count, reported):
    """After the report of a claim: drop the claim, and count again what was not reported."""
    if claim is None:
        return
    if not reported:
        bump_counter(path, count)
    try:
        os.unlink(claim)
    except OSError:
        pass


def syslog_frame(message, facility, severity, ident, pid, now=None):
    """An RFC 3164 line as glibc's syslog(3) sends it to /dev/log (locale-independent)."""
    tm = time.localtime(now)
    stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} " + time.strftime("%H:%M:%S", tm)
    pri = config.FACILITIES[facility] * 8 + config.SEVERITIES[severity]
    return f"<{pri}>{stamp} {ident}[{pid}]: {message}".encode("utf-8", "backslashreplace")


def send_syslog(data, path="/dev/log"):
    """Send one syslog frame to the local socket without ever blocking.

    Returns None on success or a short reason ("EAGAIN", "ENOENT" ...) when the frame was
    dropped. Datagram sockets (journald, rsyslog, syslog-ng's unix-dgram) get one
    MSG_DONTWAIT datagram; a stream socket (syslog-ng's unix-stream) gets a non-blocking
    connect and send, and a frame it cannot take at once is dropped.
    """
    sock = None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.sendto(data, socket.MSG_DONTWAIT, path)
            return None
        except OSError as exc:
            if exc.errno != errno.EPROTOTYPE:
                return errno.errorcode.get(exc.errno, str(exc.errno))
        sock.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            frame = data + b"\0"
            sent = sock.send(frame, socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0))
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        return None if sent == len(frame) else "partial"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else str(exc)
    finally:
        if sock is not None:
            sock.close()


def direct_argv(direct):
    """The sender's command line from the ``direct`` settings: the Apprise venv's Python
    runs secalert_sudo_send.py (sudo-alerts-ctl starts it with the same options)."""
    return [direct["python"], "-I", direct["sender"], "--config", direct["apprise_config"],
            "--spool", direct["spool"], "--lock", direct["lock"],
            "--rate-limit", str(direct["rate_limit"]), "--rate-period", str(direct["rate_period"]),
            "--state", direct["rate_state"], "--ledger", direct["ledger"]]


def _open_private(path, flags):
    """Open ``path`` (no symlinks) creating it 0600 and its directory 0700 if missing."""
    flags |= os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.mkdir(os.path.dirname(path), 0o700)
        return os.open(path, flags, 0o600)


def uid_bytes(fd, size, uid):
    """Bytes of the spool (open as ``fd``, ``size`` long) held by events of ``uid``.

    Events are compact JSON lines with ``"uid":N,``; inside a JSON string a quote is
    always escaped, so an argument cannot fake that key.
    """
    marker = b'"uid":%d,' % uid
    data = os.pread(fd, size, 0)
    return sum(len(line) + 1 for line in data.split(b"\n") if marker in line)


def spool_event(path, line, max_bytes, uid=None, share_bytes=None):
    """Append one event line to the spool without ever blocking. Raises OSError.

    Writers hold a shared flock while they write; the sender renames the spool away and
    then takes an exclusive flock on it, so it reads only after every write to that file
    has finished. A writer that finds the file renamed or locked exclusively (the sender
    has it) opens the new spool instead. Events of ``uid`` (not root) may take at most
    ``share_bytes`` of the spool (ENOSPC "share used up"); the spool as a whole at most
    ``max_bytes``.
    """
    import fcntl  # direct mode only

    data = line.encode("ascii") + b"\n"
    for _attempt in range(SPOOL_ATTEMPTS):
        fd = _open_private(path, os.O_RDWR | os.O_APPEND)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # the sender is reading this file: it is no longer the spool
            st = os.fstat(fd)
            try:
                live = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) != (live.st_dev, live.st_ino):
                continue  # renamed away by the sender before we locked it
            if st.st_uid != config.TRUSTED_UID or st.st_mode & 0o077 or not (
                    st.st_mode & 0o170000 == 0o100000):
                raise OSError(errno.EPERM, "spool must be a root-only regular file", path)
            if st.st_size + len(data) > max_bytes:
                raise OSError(errno.ENOSPC, "spool full (is the sender stuck?)", path)
            if uid and share_bytes and st.st_size + len(data) > share_bytes:
                used = uid_bytes(fd, st.st_size, uid)
                if used + len(data) > share_bytes:
                    raise OSError(errno.ENOSPC, f"spool share of uid {uid} used up "
                                  f"({used} of {share_bytes} bytes)", path)
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, "short write to the spool", path)
            return
        finally:
            os.close(fd)
    raise OSError(errno.EAGAIN, "spool busy", path)


def sender_running(lock):
    """True when a sender holds ``lock`` (checked with a non-blocking flock)."""
    import fcntl

    fd = _open_private(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock we may just have taken
    return False


def spawn_sender(argv, payload=b""):
    """Start ``argv`` detached with ``payload`` (bytes) on its stdin; never wait for it.

    The payload is written into an empty pipe before the child exists, with O_NONBLOCK:
    that cannot block (it is far below the pipe's 64 KiB capacity) and the child reads it
    whenever it runs. The child gets its own session, no inherited descriptors, "/" as
    working directory, a fixed environment, and real and effective uid/gid 0 so the
    invoking user can neither signal it nor influence what it imports.
    """
    import subprocess  # only in direct mode: it costs milliseconds to import

    rfd, wfd = os.pipe()
    try:
        os.set_blocking(wfd, False)
        written = os.write(wfd, payload) if payload else 0
        os.close(wfd)
        wfd = None
        if written != len(payload):
            raise OSError(errno.EAGAIN, "event larger than the pipe buffer")
        extra = {}
        if os.geteuid() == 0:
            extra = {"user": 0, "group": 0, "extra_groups": []}
        proc = subprocess.Popen(  # noqa: S603 - fixed argv from the root-owned config
            argv, stdin=rfd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=dict(_CHILD_ENV), close_fds=True, start_new_session=True,
            umask=0o077, **extra)
    finally:
        os.close(rfd)
        if wfd is not None:
            os.close(wfd)
    try:
        # Python and Apprise take a few hundred ms of CPU to start: let sudo and the
        # command it runs go first on a busy host.
        os.setpriority(os.PRIO_PROCESS, proc.pid, SENDER_NICENESS)
    except OSError:
        pass
    return proc.pid

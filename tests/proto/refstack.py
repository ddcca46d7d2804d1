"""Private instances of the reference mail stack (Dovecot, Postfix).

Starts Dovecot (passwd-file users, Maildir, LMTP/IMAP/POP3 on loopback) and
Postfix (its own config and queue directory, relaying every virtual domain to
one LMTP server) under a caller's temporary directory, on free loopback ports,
without touching the system services or anything in /etc. Used by the
protocol tests and by bench/. Standard library only.

Who runs as what: both masters must start as root (the tests already run as
root); no account is created. Dovecot's master, log and config processes
stay root; auth, stats and anvil run as 'dovecot', login processes as
'dovenull', imap and pop3 as the package-created 'mail' user (uid 8), which
owns every virtual user's home; lmtp processes stay root (Dovecot's default)
and take uid 8 for each delivery. Postfix's master stays root; its daemons
drop to 'postfix'. The temporary directory and its parents must be
traversable by those users (start() adds o+x to the given directory).

fs.inotify: idle IMAP sessions each hold one inotify instance and all virtual
users share uid 8, so beyond 128 idle sessions Dovecot falls back to polling.
Benchmarks with many idle sessions should wrap the run in
raised_inotify_instances(); it writes a system-wide sysctl and restores it.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin") or "dovecot"
DOVECONF = shutil.which("doveconf", path="/usr/bin:/usr/sbin") or "doveconf"
POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/bin") or "postfix"
POSTCONF = shutil.which("postconf", path="/usr/sbin:/usr/bin") or "postconf"

MAIL_USER = "mail"
INOTIFY_SYSCTL = "/proc/sys/fs/inotify/max_user_instances"
QUEUE_SUBDIRS = ("maildrop", "incoming", "active", "deferred", "hold")


class RefstackError(Exception):
    """A reference server failed to start or to stop."""


_ports_given = set()


def free_port():
    """Returns a loopback TCP port that was free a moment ago and that this
    process was not given before: a server binds its ports only when it
    starts, so the kernel may offer a port just released twice in a row."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            break
    _ports_given.add(port)
    return port


def wait_port(port, timeout, proc=None):
    """Waits until 127.0.0.1:port accepts; raises RefstackError on timeout
    or when proc (a Popen) exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RefstackError(f"server exited ({proc.returncode}) "
                                f"before port {port} opened")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RefstackError(f"port {port} not open after {timeout}s")


def ensure_traversable(path):
    """Adds o+x to path and checks its parents let other users through."""
    path = os.path.abspath(path)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXOTH)
    parent = os.path.dirname(path)
    while parent != "/":
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise RefstackError(f"{parent} is not traversable by other "
                                "users; the mail daemons could not reach "
                                f"{path}")
        parent = os.path.dirname(parent)


def spawn(argv, stderr_path):
    """Starts argv in a session of its own, stdout discarded, stderr to a
    file. Returns the Popen."""
    with open(stderr_path, "w") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)


def stop_process(proc, timeout=15.0):
    """Waits for proc to exit; kills its whole process group on timeout."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def reap_group(pgid, grace=3.0):
    """Waits up to grace seconds for process group pgid to empty, then
    kills what is left of it."""
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline:
            os.killpg(pgid, 0)
            time.sleep(0.05)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def count_files(path):
    """Number of entries in a directory; 0 when it does not exist yet."""
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def tail(path, lines=20):
    """The last lines of a log file, for error messages."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def raised_inotify_instances(minimum):
    """Raises fs.inotify.max_user_instances to at least minimum for the
    duration of the block (system-wide, needs root) and puts it back."""
    with open(INOTIFY_SYSCTL) as f:
        old = int(f.read())
    if old < minimum:
        with open(INOTIFY_SYSCTL, "w") as f:
            f.write(str(minimum))
    try:
        yield old
    finally:
        if old < minimum:
            with open(INOTIFY_SYSCTL, "w") as f:
                f.write(str(old))


class Dovecot:
    """Dovecot with passwd-file users ({PLAIN}), maildir:~/Maildir and
    LMTP, IMAP and POP3 on free loopback ports.

    users maps address -> password (or is a list of addresses, all with
    password). max_sessions raises every process and client limit above
    that many concurrent sessions. Ports are in lmtp_port, imap_port and
    pop3_port after start(). Usable as a context manager.

    Options for benchmarks: ssl_cert and ssl_key (PEM files) turn on
    ssl = yes and an IMAPS listener (imaps_port); login_processes > 0
    runs imap-login in the high-performance mode operators use at scale
    (service_count = 0, that many processes, each for up to
    max_sessions clients); extra_config is appended to dovecot.conf.
    """

    def __init__(self, tmpdir, users=(), password="secret",
                 max_sessions=1000, hostname="refstack.local",
                 ssl_cert=None, ssl_key=None, login_processes=0,
                 extra_config=""):
        self.dir = os.path.join(os.path.abspath(tmpdir), "dovecot")
        if not isinstance(users, dict):
            users = {u: password for u in users}
        self.users = dict(users)
        self.max_sessions = max_sessions
        self.hostname = hostname
        self.ssl_cert = ssl_cert
        self.ssl_key = ssl_key
        self.login_processes = login_processes
        self.extra_config = extra_config
        self.imaps_port = None
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        self.lmtp_port = self.imap_port = self.pop3_port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def home(self, user):
        """The home directory of a virtual user."""
        return os.path.join(self.dir, "home", user)

    def new_count(self, user):
        """Messages in user's Maildir/new (0 before the first delivery)."""
        return count_files(os.path.join(self.home(user), "Maildir", "new"))

    def total_new(self):
        """Messages in Maildir/new of every user given at construction."""
        return sum(self.new_count(u) for u in self.users)

    def setting(self, name):
        """The effective value of a setting, as doveconf reports it."""
        out = subprocess.run([DOVECONF, "-c", self.conf, "-h", name],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def add_user(self, user, password="secret"):
        """Adds a user. Dovecot checks passwd-file for changes at most once
        a second, so on a running server this returns after 1.1 s."""
        self.users[user] = password
        if self.proc is not None:
            self._write_users()
            time.sleep(1.1)

    def start(self):
        """Writes the config, starts dovecot in the foreground of its own
        process group and waits for its listeners. Returns lmtp_port."""
        self._prepare()
        self.proc = spawn([DOVECOT, "-F", "-c", self.conf],
                          self.log + ".stderr")
        try:
            for port in (self.lmtp_port, self.imap_port, self.pop3_port,
                         self.imaps_port):
                if port is not None:
                    wait_port(port, 20, self.proc)
        except Exception:
            self.stop()
            raise RefstackError("dovecot did not start:\n" + tail(self.log) +
                                tail(self.log + ".stderr"))
        return self.lmtp_port

    def stop(self):
        """Stops the master and all its children (SIGTERM, then SIGKILL to
        the process group). Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
        stop_process(self.proc)
        reap_group(self.proc.pid)
        self.proc = None

    def _prepare(self):
        ensure_traversable(os.path.dirname(self.dir))
        mail = pwd.getpwnam(MAIL_USER)
        for sub in ("", "run", "state", "home"):
            os.makedirs(os.path.join(self.dir, sub), 0o755, exist_ok=True)
            os.chmod(os.path.join(self.dir, sub), 0o755)
        os.chown(os.path.join(self.dir, "home"), mail.pw_uid, mail.pw_gid)
        self.lmtp_port = free_port()
        self.imap_port = free_port()
        self.pop3_port = free_port()
        if self.ssl_cert:
            self.imaps_port = free_port()
        self._write_users()
        with open(self.conf, "w") as f:
            f.write(self._config(mail))

    def _write_users(self):
        path = os.path.join(self.dir, "users")
        with open(path + ".new", "w") as f:
            for user, password in self.users.items():
                f.write(f"{user}:{{PLAIN}}{password}::::::\n")
        os.chmod(path + ".new", 0o644)
        os.rename(path + ".new", path)

    def _config(self, mail):
        n = self.max_sessions
        # Every login, lmtp and mail service may hold up to n + 100
        # processes; auth and anvil count one client per such process.
        limit = n + 100
        clients = 5 * limit
        users = os.path.join(self.dir, "users")
        return self._base_config(mail, n, limit, clients, users) + \
            self._ssl_config() + self._login_config() + self.extra_config

    def _ssl_config(self):
        if not self.ssl_cert:
            return ""
        return f"""ssl = yes
ssl_cert = <{self.ssl_cert}
ssl_key = <{self.ssl_key}
service imap-login {{
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
"""

    def _login_config(self):
        if not self.login_processes:
            return ""
        per = self.max_sessions // self.login_processes + 100
        return f"""service imap-login {{
  service_count = 0
  process_min_avail = {self.login_processes}
  client_limit = {per}
  vsz_limit = 4G
}}
"""

    def _base_config(self, mail, n, limit, clients, users):
        return f"""# Written by refstack.py; private instance, loopback only.
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = refstack-{os.getpid()}-{self.lmtp_port}
log_path = {self.log}
hostname = {self.hostname}
postmaster_address = postmaster@{self.hostname}
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_uid = {mail.pw_uid}
mail_gid = {mail.pw_gid}
first_valid_uid = {mail.pw_uid}
last_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
last_valid_gid = {mail.pw_gid}
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = {limit}
default_client_limit = {clients}
mail_max_userip_connections = {n + 10}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
  default_fields = uid={mail.pw_uid} gid={mail.pw_gid} home={self.dir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service imap {{
  process_limit = {limit}
}}
service pop3 {{
  process_limit = {limit}
}}
service auth {{
  client_limit = {clients}
}}
service anvil {{
  client_limit = {clients}
}}
service stats {{
  client_limit = {clients}
}}
"""


MASTER_CF = """# Written by refstack.py; nothing runs chrooted.
{smtp_listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
smtp      unix  -       -       n       -       -       smtp
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """Postfix with its own config and queue directory that accepts mail
    for domains on a loopback smtpd port and relays it over LMTP to
    lmtp_addr (Dovecot or pushmaild). No DNS, no chroot, every other
    transport error:. Postfix fsyncs each queue file before its 250.
    Usable as a context manager."""

    def __init__(self, tmpdir, lmtp_addr, domains,
                 hostname="refstack.local", extra_main=None):
        self.dir = os.path.join(os.path.abspath(tmpdir), "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "maillog")
        self.lmtp_addr = lmtp_addr
        self.domains = list(domains)
        self.hostname = hostname
        self.extra_main = dict(extra_main or {})
        self.proc = None
        self.master_pgid = None
        self.smtp_port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Writes main.cf/master.cf, creates the queue as Postfix expects,
        starts the master in the foreground of its own process group and
        waits for smtpd. Returns the SMTP port."""
        self._prepare()
        self._postfix("check")
        self.proc = spawn([POSTFIX, "-c", self.etc, "start-fg"],
                          self.log + ".stderr")
        try:
            wait_port(self.smtp_port, 30, self.proc)
            self.master_pgid = self._master_pgid()
        except Exception:
            self.stop()
            raise RefstackError("postfix did not start:\n" + tail(self.log) +
                                tail(self.log + ".stderr"))
        return self.smtp_port

    def stop(self):
        """Stops the master and its daemons ('postfix stop', then SIGKILL
        to the process group). Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            subprocess.run([POSTFIX, "-c", self.etc, "stop"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        stop_process(self.proc)
        reap_group(self.proc.pid, 0)
        if self.master_pgid is not None:
            reap_group(self.master_pgid)
        self.proc = self.master_pgid = None

    def queue_count(self):
        """Messages still in the queue (maildrop, incoming, active,
        deferred, hold), counted from the queue directory."""
        total = 0
        for sub in QUEUE_SUBDIRS:
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                total += len(files)
        return total

    def wait_queue_empty(self, timeout):
        """Polls until the queue is empty. Returns True when it is, False
        when timeout seconds passed first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.queue_count() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def setting(self, name):
        """The effective value of a main.cf parameter."""
        out = subprocess.run([POSTCONF, "-c", self.etc, "-h", name],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def _master_pgid(self):
        """The master detaches into its own session, so its daemons are
        not in the group of the process we started."""
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                with open(pidfile) as f:
                    return os.getpgid(int(f.read().strip()))
            time.sleep(0.05)
        raise RefstackError("postfix master wrote no pid file")

    def _postfix(self, *args):
        out = subprocess.run([POSTFIX, "-c", self.etc, *args],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RefstackError(f"postfix {' '.join(args)} failed:\n"
                                f"{out.stdout}{out.stderr}")

    def _prepare(self):
        ensure_traversable(os.path.dirname(self.dir))
        for sub in (self.dir, self.etc, self.queue):
            os.makedirs(sub, 0o755, exist_ok=True)
            os.chmod(sub, 0o755)
        self.smtp_port = free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(self._main_cf())
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(
                smtp_listen=f"127.0.0.1:{self.smtp_port}"))

    def _main_cf(self):
        host, port = self.lmtp_addr
        params = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": self.hostname,
            "myorigin": self.hostname,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "smtpd_peername_lookup": "no",
            "disable_dns_lookups": "yes",
            "smtp_host_lookup": "native",
            "lmtp_host_lookup": "native",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relay_domains": "",
            "virtual_mailbox_domains": ", ".join(self.domains),
            "virtual_transport": f"lmtp:inet:{host}:{port}",
            "local_transport": "error:local delivery is disabled",
            "default_transport": "error:outbound mail is disabled",
            "relay_transport": "error:relaying is disabled",
            "biff": "no",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,
        }
        params.update(self.extra_main)
        lines = [f"{k} = {v}" for k, v in params.items()]
        return "# Written by refstack.py; private instance.\n" + \
            "\n".join(lines) + "\n"

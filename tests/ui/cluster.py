"""A real cluster for the browser tests: MariaDB (mariadbd in a temp dir on
a loopback port), etcd on loopback, `cronix admin` and one `cronix node`
(the same binaries tests/support/services.c starts from C). Cluster has the
interface of test_console.Server (url, password, token, api(), stop()), so
the same cases run against it. Every process is stopped by stop(), which
also runs when start-up fails half-way.
"""
import getpass
import json
import os
import signal
import subprocess
import time
import urllib.request

from harness import ApiServer, free_port

SECRET = "ui-cluster-secret-0123456789abcdef"  # cluster.secret: admin <-> node


def wait_for(fn, what, proc=None, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s: the process exited (%s)" % (what, proc.returncode))
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise RuntimeError("%s: not ready after %d s (%s)" % (what, timeout, last))


class Cluster(ApiServer):
    def __init__(self, tmp, binary, extra=()):
        self.tmp, self.procs, self.logs = tmp, [], []
        try:
            self._start(binary, extra)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.logs.append(log)
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, p))
        return p

    def _mariadb(self):
        d = os.path.join(self.tmp, "mariadb")
        data = os.path.join(d, "data")
        os.makedirs(data)
        # A short socket path (at most 107 bytes) of our own.
        self.sock = "/tmp/cx-ui-mdb-%d-%d.sock" % (os.getpid(), free_port())
        user = getpass.getuser()
        common = ["--no-defaults", "--datadir=" + data, "--tmpdir=" + d, "--user=" + user,
                  "--skip-name-resolve", "--skip-log-bin",
                  "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M"]
        with open(os.path.join(d, "install.log"), "w") as log:
            subprocess.run(["mariadb-install-db", *common, "--auth-root-authentication-method=normal",
                            "--skip-test-db"], stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
        port = free_port()
        p = self._spawn("mariadbd", ["/usr/sbin/mariadbd", *common, "--socket=" + self.sock,
                                     "--port=%d" % port, "--bind-address=127.0.0.1",
                                     "--pid-file=" + os.path.join(d, "mariadbd.pid"),
                                     "--innodb-flush-log-at-trx-commit=2",
                                     "--character-set-server=utf8mb4",
                                     "--collation-server=utf8mb4_general_ci"])
        sql = ("CREATE DATABASE cronix CHARACTER SET utf8mb4;"
               " CREATE USER 'cronix'@'%' IDENTIFIED BY 'secret';"
               " GRANT ALL PRIVILEGES ON cronix.* TO 'cronix'@'%';")

        def bootstrap():
            r = subprocess.run(["mariadb", "--no-defaults", "-uroot", "--socket=" + self.sock, "-e", sql],
                               capture_output=True, timeout=20)
            return r.returncode == 0
        wait_for(bootstrap, "mariadbd", p)
        return "mysql://cronix:secret@127.0.0.1:%d/cronix" % port

    def _etcd(self):
        cport, pport = free_port(), free_port()
        client = "http://127.0.0.1:%d" % cport
        peer = "http://127.0.0.1:%d" % pport
        p = self._spawn("etcd", ["etcd", "--name", "ui", "--data-dir", os.path.join(self.tmp, "etcd"),
                                 "--listen-client-urls", client, "--advertise-client-urls", client,
                                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                 "--initial-cluster", "ui=" + peer, "--initial-cluster-state", "new",
                                 "--log-level", "warn"])
        wait_for(lambda: json.load(urllib.request.urlopen(client + "/health", timeout=2)).get("health") == "true",
                 "etcd", p)
        return client

    def _start(self, binary, extra):
        store, etcd = self._mariadb(), self._etcd()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        admin_dir, node_dir = os.path.join(self.tmp, "admin"), os.path.join(self.tmp, "node")
        for d in (admin_dir, node_dir):  # they hold credentials: 0700 or refused
            os.makedirs(d)
            os.chmod(d, 0o700)
        sets = ["--set", "node.ttl=2s", "--set", "cluster.secret=" + SECRET]
        for x in extra:
            sets.append(x)
        admin = self._spawn("admin", [binary, "admin", "--data-dir", admin_dir, "--listen",
                                      "127.0.0.1:%d" % self.port, "--store", store, "--etcd", etcd,
                                      "--log-level", "warn", *sets])
        wait_for(lambda: urllib.request.urlopen(self.url + "/healthz", timeout=2).status == 200, "cronix admin", admin)
        node = self._spawn("node", [binary, "node", "--data-dir", node_dir, "--store", store, "--etcd", etcd,
                                    "--listen", "127.0.0.1:0", "--log-level", "warn",
                                    "--set", "node.shutdown_grace=2s", *sets])
        self.read_creds(admin_dir)
        # Ready: the node alive and an admin leading.
        wait_for(lambda: [n for n in self.api("/node/search", {})["data"]["list"] if n["alive"]], "cronix node", node)
        wait_for(lambda: self.api("/cluster")["data"]["leader"], "the leader election", admin)

    def stop(self):
        # Node, admin, etcd, mariadbd: the reverse of the start.
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for log in self.logs:
            log.close()
        self.logs = []
        if getattr(self, "sock", None) and os.path.exists(self.sock):
            os.unlink(self.sock)

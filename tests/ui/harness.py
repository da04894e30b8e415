"""What the console's servers share (test_console.Server: standalone;
cluster.Cluster: admin + node on MariaDB + etcd): a free loopback port, the
initial admin's credentials, and API calls with a bearer token."""
import json
import os
import socket
import urllib.error
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ApiServer:
    """Needs self.url; sets self.password and self.token."""

    def read_creds(self, data_dir):
        creds = {}
        with open(os.path.join(data_dir, "initial-admin.txt")) as f:
            for line in f:
                if " = " in line and not line.startswith("#"):
                    k, v = line.strip().split(" = ", 1)
                    creds[k] = v
        self.password, self.token = creds["password"], creds["token"]

    def api(self, path, body=None, token=None):
        req = urllib.request.Request(
            self.url + path, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + (token or self.token)})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

#!/usr/bin/python3
"""The web console in a real browser (issue 16): headless Chromium from
Debian driven by python3-selenium against `cronix standalone` (CX_CRONIX_BIN)
on a free loopback port with a temporary data dir. Each case prints
"ok NAME" or "FAIL NAME: why"; a failed case leaves a screenshot and the
browser's console log in the temp dir (kept then). The last line is
"ui: N passed, N failed" (scripts/run-tests.sh counts it).

With --cluster the cases of CLUSTER_CASES run against `cronix admin` +
`cronix node` on a real MariaDB and etcd instead (tests/ui/cluster.py).

    tests/ui/test_console.py [--cluster] [NAME-SUBSTRING...]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # counted as skipped, not passed
    print("ui: python3-selenium missing (scripts/install-deps.sh test)")
    print("ui: 0 passed, 0 failed, 1 skipped")
    sys.exit(0)

from harness import ApiServer, free_port  # noqa: E402  (tests/ui/harness.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CX_CRONIX_BIN") or os.path.join(ROOT, "build/san/cronix")
WAIT = 20  # seconds any one thing may take to show (a loaded machine)


class Server(ApiServer):
    def __init__(self, tmp, extra=()):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(tmp, "cronix.log"), "w")
        self.proc = subprocess.Popen(
            [BIN, "standalone", "--data-dir", os.path.join(tmp, "data"),
             "--listen", "127.0.0.1:%d" % self.port, "--log-level", "warn", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2)
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("cronix standalone did not come up")
                time.sleep(0.2)
        self.read_creds(os.path.join(tmp, "data"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("CX_CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--lang=en-US", "--no-first-run"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(os.environ.get("CX_CHROMEDRIVER", "/usr/bin/chromedriver")),
                            options=o)


class UI:
    """The browser plus the helpers the cases share."""

    def __init__(self, srv, d):
        self.srv, self.d = srv, d

    def go(self, page):
        self.d.get(self.srv.url + "/ui/" + page)

    def wait(self, fn, what, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: fn())
        except TimeoutException:
            raise AssertionError("timed out waiting for " + what)

    def el(self, css, timeout=WAIT):
        return self.wait(lambda: (self.d.find_elements(By.CSS_SELECTOR, css) or [None])[0], css, timeout)

    def els(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text(self):
        return self.d.find_element(By.TAG_NAME, "body").text

    def login(self, user, password):
        self.go("")
        self.el("input[name=username]").send_keys(user)
        self.el("input[name=password]").send_keys(password)
        self.el("button[type=submit]").click()
        self.el("header.top")

    def logout(self):
        self.el("#logout").click()
        self.el("input[name=username]")

    def assert_no_xss(self):
        try:
            a = self.d.switch_to.alert
            txt = a.text
            a.dismiss()
            raise AssertionError("an alert opened: " + txt)
        except NoAlertPresentException:
            pass
        csp = [e["message"] for e in self.d.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not csp, "the CSP had to block something: " + csp[0]
        v = self.d.execute_script("return window.__xss")
        assert v is None, "injected script ran (window.__xss = %r)" % v


def make_node_job(srv, name, command, spec="0 0 3 * * *"):
    node = srv.api("/node/search", {})["data"]["list"][0]["uuid"]
    r = srv.api("/job/add", {"name": name, "type": 1, "command": command, "spec": spec,
                             "allocation": 1, "run_on": node})
    assert r["code"] == 0, r
    return r["data"]["id"]


# ---- the cases -------------------------------------------------------------

def case_login_form(ui):
    ui.go("jobs")
    ui.wait(lambda: "/ui/login" in ui.d.current_url, "the login page")
    ui.el("input[name=username]").send_keys("admin")
    ui.el("input[name=password]").send_keys("wrong-password")
    ui.el("button[type=submit]").click()
    ui.wait(lambda: "wrong username or password" in ui.el(".form-err").text, "the login error")
    ui.el("input[name=password]").clear()
    ui.el("input[name=password]").send_keys(ui.srv.password)
    ui.el("button[type=submit]").click()
    # Back to the page asked for.
    ui.wait(lambda: ui.d.current_url.endswith("/ui/jobs"), "the jobs page after login")
    ui.el("#new-job")


def case_editor_preview_and_create(ui):
    ui.go("jobs/new")
    ui.el("#f-name").send_keys("ui job")
    ui.el("#f-command").send_keys("echo hello-ui")
    ui.el("#f-timezone").send_keys("Asia/Shanghai")
    ui.el("#f-spec").send_keys("0 */0 * * * *")
    ui.wait(lambda: "step 0" in ui.el("#cron-preview").text, "the preview's spec error")
    Select(ui.el("#f-run_on")).select_by_index(1)
    ui.el("#save").click()
    # The API's error shows on the field it names.
    ui.wait(lambda: "step 0" in ui.el("#err-spec").text, "the error under the spec field")
    spec = ui.el("#f-spec")
    spec.clear()
    spec.send_keys("0 30 3 * * *")
    ui.wait(lambda: len(ui.els("#cron-preview ol li")) == 10, "10 fire times in the preview")
    first = ui.els("#cron-preview ol li")[0].text
    assert first.endswith("T03:30:00+08:00"), first
    assert "03:30" in ui.el("#cron-preview .reading").text
    ui.el("#save").click()
    ui.wait(lambda: "/ui/jobs/" in ui.d.current_url and not ui.d.current_url.endswith("new"), "the saved job's page")
    jid = int(ui.d.current_url.rsplit("/", 1)[1])
    j = ui.srv.api("/job/find?id=%d" % jid)["data"]
    assert j["name"] == "ui job" and j["timezone"] == "Asia/Shanghai" and j["spec"] == "0 30 3 * * *", j
    ui.job_id = jid


def case_editor_selector_and_limits(ui):
    """node_selector, run_as and the limits: sent, stored, and an error from
    the API shown under the field it names."""
    ui.go("jobs/new")
    ui.el("#f-name").send_keys("ui selector")
    ui.el("#f-command").send_keys("true")
    ui.el("#f-spec").send_keys("0 0 4 * * *")
    Select(ui.el("#f-run_on")).select_by_index(1)
    ui.el("#f-node_selector").send_keys("zone in (a,")
    ui.el("#f-limit_nofile").send_keys("64")
    ui.el("#f-limit_memory_mb").send_keys("256")
    ui.el("#save").click()
    ui.wait(lambda: ui.el("#err-node_selector").text, "the error under node_selector")
    assert "bad" in ui.el(".field[data-field=node_selector]").get_attribute("class")
    sel = ui.el("#f-node_selector")
    sel.clear()
    sel.send_keys("env!=test")
    ui.el("#save").click()
    ui.wait(lambda: "/ui/jobs/" in ui.d.current_url and not ui.d.current_url.endswith("new"), "the saved job")
    j = ui.srv.api("/job/find?id=%s" % ui.d.current_url.rsplit("/", 1)[1])["data"]
    assert j["node_selector"] == "env!=test" and j["limit_nofile"] == 64 and j["limit_memory_mb"] == 256, j
    # http jobs have no run_as or limits: hidden
    Select(ui.el("#f-type")).select_by_value("2")
    assert not ui.el("#f-run_as").is_displayed() and ui.el("#f-node_selector").is_displayed()


def case_run_now_and_run_log(ui):
    jid = getattr(ui, "job_id", None) or make_node_job(ui.srv, "ui job", "echo hello-ui")
    ui.go("jobs?q=ui+job")
    row = ui.el("tr[data-id='%d']" % jid)
    row.find_element(By.CSS_SELECTOR, "[data-act=once]").click()
    ui.wait(lambda: "Run requested" in ui.text(), "the run-now toast")

    def found():
        ui.go("runs?job=%d" % jid)
        ui.el("main h1")
        ui.wait(lambda: ui.els("table.runs") or ui.els("p.empty"), "the run log")
        return ui.els("table.runs tbody tr")
    ui.wait(found, "the run in the run log", timeout=40)
    assert ui.el("#rjob").get_attribute("value") == str(jid)  # filter kept in the URL
    ui.els("table.runs tbody tr a")[0].click()
    ui.wait(lambda: "hello-ui" in ui.el("#run-output").text, "the run's output")


def case_run_log_filters(ui):
    """Status and trigger filters, kept in the URL, answered by the API."""
    jid = getattr(ui, "job_id", None)
    if jid is None:
        jid = make_node_job(ui.srv, "ui filtered", "echo filtered")
        assert ui.srv.api("/job/once", {"job_id": jid})["code"] == 0
    ui.wait(lambda: [r for r in ui.srv.api("/job/log", {"job_id": jid})["data"]["list"] if r["status"] == "success"],
            "a successful run", timeout=40)
    ui.go("runs?job=%d" % jid)
    Select(ui.el("#rstatus")).select_by_value("success")
    Select(ui.el("#rtrigger")).select_by_value("once")
    ui.el("form.filters button[type=submit]").click()
    ui.wait(lambda: "status=success" in ui.d.current_url and "trigger=once" in ui.d.current_url, "the filters in the URL")
    ui.wait(lambda: ui.els("table.runs tbody tr"), "the run listed")
    statuses = {r.find_elements(By.CSS_SELECTOR, "td")[4].text for r in ui.els("table.runs tbody tr")}
    assert statuses == {"success"}, statuses
    ui.d.refresh()
    assert Select(ui.el("#rstatus")).first_selected_option.get_attribute("value") == "success"
    assert Select(ui.el("#rtrigger")).first_selected_option.get_attribute("value") == "once"
    ui.go("runs?job=%d&status=failed,timeout,killed,lost,error" % jid)
    ui.el("p.empty")
    ui.go("runs?job=%d&trigger=cron" % jid)
    ui.el("p.empty")
    assert Select(ui.el("#rtrigger")).first_selected_option.get_attribute("value") == "cron"
    # The node filter (its box offers the known nodes) and a time range.
    node = ui.srv.api("/job/log", {"job_id": jid})["data"]["list"][0]["node_uuid"]
    ui.go("runs?job=%d&node=%s" % (jid, node))
    ui.el("table.runs tbody tr")
    ui.wait(lambda: ui.els("#rnodes option[value='%s']" % node), "the node offered")
    ui.go("runs?job=%d&node=no-such-node" % jid)
    ui.el("p.empty")
    ui.go("runs?job=%d&from=2000-01-01T00:00&to=2000-01-02T00:00" % jid)
    ui.el("p.empty")
    assert ui.el("#rfrom").get_attribute("value") == "2000-01-01T00:00"


def case_nodes_and_leader(ui):
    nodes = ui.srv.api("/node/search", {})["data"]["list"]
    assert nodes, "no node"
    ui.go("nodes")
    ui.wait(lambda: (nodes[0]["hostname"] or nodes[0]["uuid"]) in ui.el("main").text, "the node listed")
    # An admin drains the node and undrains it (a rolling upgrade's steps).
    uuid = nodes[0]["uuid"]
    drain = lambda: [n for n in ui.srv.api("/node/search", {})["data"]["list"] if n["uuid"] == uuid][0]["drain"]
    ui.el("tr[data-uuid='%s'] [data-act=drain]" % uuid).click()
    ui.wait(lambda: ui.d.switch_to.alert, "the confirm").accept()
    ui.wait(lambda: drain() != "", "the node drained")
    ui.el("tr[data-uuid='%s'] [data-act=undrain]" % uuid).click()
    ui.wait(lambda: drain() == "", "the node undrained")
    ui.el("tr[data-uuid='%s'] [data-act=drain]" % uuid)
    c = ui.srv.api("/cluster")["data"]
    ui.go("")
    leader = ui.el("#dash-leader")
    if c["mode"] == "standalone":
        ui.wait(lambda: "standalone" in leader.text, "standalone on the dashboard")
    else:
        assert c["leader"], c
        ui.wait(lambda: c["leader"]["hostname"] in leader.text and "pid " + c["leader"]["pid"] in leader.text,
                "the leader on the dashboard")


def case_pause_edit_clone_delete(ui):
    jid = make_node_job(ui.srv, "ui life", "true")
    ui.go("jobs?q=ui+life")
    ui.el("tr[data-id='%d'] [data-act=pause]" % jid).click()
    ui.el("tr[data-id='%d'] [data-act=resume]" % jid)
    assert ui.srv.api("/job/find?id=%d" % jid)["data"]["enabled"] is False
    ui.el("tr[data-id='%d'] [data-act=edit]" % jid).click()
    note = ui.el("#f-note")
    note.send_keys("edited in the browser")
    ui.el("#save").click()
    ui.wait(lambda: ui.srv.api("/job/find?id=%d" % jid)["data"]["note"] == "edited in the browser", "the edit")
    ui.go("jobs?q=ui+life")
    ui.el("tr[data-id='%d'] [data-act=clone]" % jid).click()
    ui.wait(lambda: ui.el("#f-name").get_attribute("value") == "ui life (copy)", "the clone's name")
    ui.el("#save").click()
    ui.wait(lambda: "/ui/jobs/" in ui.d.current_url and not ui.d.current_url.endswith("new")
            and not ui.d.current_url.endswith("/%d" % jid) and "clone" not in ui.d.current_url, "the clone saved")
    cid = int(ui.d.current_url.rsplit("/", 1)[1])
    c = ui.srv.api("/job/find?id=%d" % cid)["data"]
    assert c["note"] == "edited in the browser" and c["command"] == "true", c
    ui.go("jobs?q=ui+life")
    ui.el("tr[data-id='%d'] [data-act=del]" % cid).click()
    ui.wait(lambda: ui.d.switch_to.alert, "the confirm").accept()
    ui.wait(lambda: not ui.els("tr[data-id='%d']" % cid), "the clone's row to go")
    assert ui.srv.api("/job/find?id=%d" % cid)["code"] == 1201


def case_bulk_pause(ui):
    ids = [make_node_job(ui.srv, "ui bulk %d" % i, "true") for i in range(3)]
    ui.go("jobs?q=ui+bulk")
    for i in ids[:2]:
        ui.el("tr[data-id='%d'] input[type=checkbox]" % i).click()
    assert "2 selected" in ui.el(".bulk").text
    ui.el(".bulk [data-bulk=pause]").click()
    ui.wait(lambda: [ui.srv.api("/job/find?id=%d" % i)["data"]["enabled"] for i in ids] == [False, False, True],
            "two of three paused")


def case_viewer_sees_no_write_actions(ui):
    r = ui.srv.api("/user/add", {"username": "vera", "password": "viewer-pass-1", "role": "viewer"})
    assert r["code"] == 0, r
    jid = make_node_job(ui.srv, "ui viewed", "true")
    ui.logout()
    ui.login("vera", "viewer-pass-1")
    ui.go("jobs?q=ui+viewed")
    ui.el("tr[data-id='%d']" % jid)
    assert not ui.els("[data-act]") and not ui.els("#new-job") and not ui.els("input[type=checkbox]"), "write actions shown"
    assert "Users" not in ui.el("nav.menu").text
    ui.go("jobs/%d" % jid)
    ui.el("#f-name")
    assert not ui.els("#save") and ui.el("#f-name").get_attribute("disabled") is not None
    # The API still refuses it when forced.
    code = ui.d.execute_async_script("""
      const done = arguments[0];
      fetch('../job/del', {method: 'POST', headers: {Authorization: 'Bearer ' + sessionStorage.getItem('cx.token')},
                           body: JSON.stringify({ids: [%d]})}).then((r) => done(r.status));""" % jid)
    assert code == 403, code
    ui.logout()
    ui.login("admin", ui.srv.password)


def case_zh_cn_and_remembered(ui):
    ui.go("jobs")
    Select(ui.el("#lang")).select_by_value("zh-CN")
    ui.wait(lambda: "任务" in ui.el("nav.menu").text and "新建任务" in ui.text(), "Chinese labels")
    ui.d.refresh()
    ui.wait(lambda: "执行记录" in ui.el("nav.menu").text, "Chinese after a reload")
    assert ui.d.execute_script("return document.documentElement.lang") == "zh-CN"
    Select(ui.el("#lang")).select_by_value("en")
    ui.wait(lambda: "Jobs" in ui.el("nav.menu").text, "English again")


def case_deep_url_reload(ui):
    jid = make_node_job(ui.srv, "ui deep", "true")
    for page, sel in (("jobs/%d" % jid, "#f-name"), ("runs?status=failed", "#rstatus"), ("nodes", "main h1"),
                      ("account", "#new_password"), ("", "#dash-leader"), ("users", "main h1"),
                      ("audit", "main h1"), ("settings", "main h1"), ("jobs/new", "#f-name"),
                      ("runs?view=running", "#runs-running")):
        ui.go(page)
        ui.el(sel)
        ui.d.refresh()
        ui.el(sel)
    ui.go("runs?status=failed")
    assert Select(ui.el("#rstatus")).first_selected_option.get_attribute("value") == "failed"
    ui.go("jobs/%d" % jid)
    assert ui.el("#f-name").get_attribute("value") == "ui deep"
    # The shell's links are relative (a proxy's sub-path is kept).
    html = urllib.request.urlopen(ui.srv.url + "/ui/jobs/%d" % jid).read().decode()
    assert '<base href="../">' in html and 'src="assets/' in html, html


def case_xss_renders_as_text(ui):
    name = "<img src=x onerror=alert(1)>"
    jid = make_node_job(ui.srv, name, "true")
    out = "</script><script>window.__xss=2</script><img src=x onerror=window.__xss=3>"
    jid2 = make_node_job(ui.srv, '<img src=x onerror="window.__xss=1">', "printf '%s\\n' '" + out + "'")
    ui.srv.api("/job/once", {"job_id": jid2})
    ui.go("jobs?q=img")
    ui.el("tr[data-id='%d']" % jid)
    ui.wait(lambda: name in ui.el("tr[data-id='%d'] td.name" % jid).text, "the name shown as text")
    ui.assert_no_xss()

    def run():
        lst = ui.srv.api("/job/log", {"job_id": jid2})["data"]["list"]
        return lst and lst[0]["status"] != "running" and lst[0]
    r = ui.wait(run, "the run of the job with </script> output", timeout=40)
    ui.go("runs/%d" % r["id"])
    ui.wait(lambda: out in ui.el("#run-output").text, "the output shown as text")
    ui.assert_no_xss()
    ui.go("")  # the dashboard lists names too
    ui.el(".cards")
    ui.go("jobs/%d" % jid2)
    ui.el("#f-name")
    ui.assert_no_xss()


def case_live_output(ui):
    # Prints a line every 300 ms for ~3 s; the first line is markup that must
    # show as text when it arrives live, then 3000 bytes the 1 KiB cap cuts.
    evil = "<img src=x onerror=window.__xss=4>"
    jid = make_node_job(ui.srv, "ui live", "echo '" + evil + "'; head -c 3000 /dev/zero | tr '\\0' a; echo;"
                        " for i in 1 2 3 4 5 6 7 8 9 10; do echo line$i; sleep 0.3; done")
    assert ui.srv.api("/job/once", {"job_id": jid})["code"] == 0

    def running():
        lst = ui.srv.api("/job/running", {"job_id": jid})["data"]["list"]
        return lst and lst[0]["run_id"]
    run = ui.wait(running, "the run in /job/running")
    # The Runs page's running view links to it.
    ui.go("runs?view=running&job=%d" % jid)
    ui.el("table.running tr[data-run='%d'] a.follow" % run).click()
    ui.wait(lambda: ui.d.current_url.endswith("/ui/runs/%d" % run), "the run page")
    snap = "const m = document.getElementById('main'), o = document.getElementById('run-output');" \
           "return [m.dataset.live || '', o ? o.textContent : ''];"
    # Lines arrive while the page still follows (before the end event).
    first = ui.wait(lambda: (lambda s: s[1].count("line") >= 1 and s)(ui.d.execute_script(snap)), "the first live line")
    assert first[0] in ("live", "paused", "retry") and "line10" not in first[1], first
    assert evil in first[1], first
    ui.assert_no_xss()
    # Pause: the page stops taking output while the run goes on; resume
    # continues from the last event id (the end check below sees every line
    # exactly once). Skipped if a slow machine already saw the end.
    paused = ui.d.execute_script(
        "const b = document.getElementById('run-pause'), m = document.getElementById('main');"
        "if (b && m.dataset.live === 'live') b.click(); return [m.dataset.live, document.getElementById('run-output').textContent];")
    if paused[0] == "paused":
        def api_ahead():
            out = ui.srv.api("/job/output?run_id=%d&offset=0" % run)["data"]
            return out["output"].count("line") > paused[1].count("line") or out["status"] != "running"
        ui.wait(api_ahead, "more output while paused")
        assert ui.d.execute_script(snap) == paused, "output grew while paused"
        assert ui.el("#run-pause").text == "Resume following"
        ui.el("#run-pause").click()
    ui.wait(lambda: ui.d.execute_script(snap)[0] == "end", "the end event", timeout=40)
    state, text = ui.d.execute_script(snap)
    assert [l for l in text.splitlines() if l.startswith("line")] == ["line%d" % i for i in range(1, 11)], text
    assert "success" in ui.el("#run-live-status").text, ui.el("#run-live-status").text
    cut = [e.text for e in ui.els("#run-output .cut")]
    assert len(cut) == 1 and cut[0].startswith("[… ") and cut[0].endswith(" bytes missed …]") \
        and int(cut[0].split()[1]) > 1000, cut
    # The details refresh after the end: exit code and status from the store.
    ui.wait(lambda: "success" in ui.el("#run-details").text, "the stored status")
    ui.assert_no_xss()
    # A finished run shows its stored output, not a stream.
    ui.go("runs/%d" % run)
    ui.wait(lambda: "line10" in ui.el("#run-output").text, "the stored output")
    assert not ui.els("#run-pause")
    ui.assert_no_xss()


def case_live_follow(ui):
    """A run's output arriving live on its page while it runs (on a cluster
    through the admin, from the node that runs it), then its end."""
    jid = make_node_job(ui.srv, "ui follow", "for i in $(seq 1 40); do echo tick$i; sleep 0.5; done")
    assert ui.srv.api("/job/once", {"job_id": jid})["code"] == 0

    def running():
        lst = ui.srv.api("/job/running", {"job_id": jid})["data"]["list"]
        return lst and lst[0]["run_id"]
    run = ui.wait(running, "the run in /job/running")
    ui.go("runs/%d" % run)
    snap = "const m = document.getElementById('main'), o = document.getElementById('run-output');" \
           "return [m.dataset.live || '', o ? o.textContent : ''];"
    s = ui.wait(lambda: (lambda s: s[0] == "live" and "tick" in s[1] and s)(ui.d.execute_script(snap)),
                "live lines while the run goes on")
    assert "tick40" not in s[1], s
    ui.wait(lambda: ui.d.execute_script(snap)[0] == "end", "the end event", timeout=60)
    text = ui.d.execute_script(snap)[1]
    assert [l for l in text.splitlines() if l.startswith("tick")] == ["tick%d" % i for i in range(1, 41)], text
    ui.wait(lambda: "success" in ui.el("#run-details").text, "the stored status")


def case_audit_page(ui):
    jid = make_node_job(ui.srv, "ui audited", "true")
    assert ui.srv.api("/job/pause", {"ids": [jid]})["code"] == 0
    ui.go("audit")
    assert "Audit" in ui.el("nav.menu").text and "Settings" in ui.el("nav.menu").text
    ui.el("#akind").send_keys("job.add")
    ui.el("form.filters button[type=submit]").click()
    ui.wait(lambda: "kind=job.add" in ui.d.current_url, "the kind filter in the URL")
    ui.el("table.audit")
    kinds = {r.get_attribute("data-kind") for r in ui.els("table.audit tbody tr[data-kind]")}
    assert kinds == {"job.add"}, kinds
    row = [r for r in ui.els("table.audit tbody tr[data-kind]") if "job %d" % jid in r.text]
    assert row, "no job.add row for job %d" % jid
    rid = row[0].get_attribute("data-id")
    assert "admin" in row[0].text and row[0].find_element(By.CSS_SELECTOR, "time").get_attribute("title").endswith(" UTC")
    row[0].find_element(By.CSS_SELECTOR, "button.detail").click()
    after = ui.el("tr.audit-detail[data-for='%s'] pre[data-side=after]" % rid)
    j = json.loads(after.text)  # pretty-printed JSON, as text
    assert j["name"] == "ui audited" and j["id"] == jid, j
    assert ui.el("tr.audit-detail[data-for='%s'] [data-side=before]" % rid).text == "—"
    # Every job.add detail opened (in a full run the XSS case's job names are among them): text only.
    for b in ui.els("table.audit tbody tr[data-kind] button.detail[aria-expanded=false]"):
        b.click()
    ui.assert_no_xss()
    # Reloaded, the filter stays; a prefix finds the pause, whose changed
    # member is marked on both sides.
    ui.d.refresh()
    assert ui.el("#akind").get_attribute("value") == "job.add"
    ui.go("audit?kind=job.")
    ui.el("table.audit")
    row = [r for r in ui.els("table.audit tbody tr[data-kind='job.pause']") if "job %d" % jid in r.text]
    assert row, "no job.pause row for job %d" % jid
    row[0].find_element(By.CSS_SELECTOR, "button.detail").click()
    ui.wait(lambda: [m.text for m in ui.els("tr.audit-detail mark.chg")] == ['  "enabled": true\n', '  "enabled": false\n']
            or [m.text.strip() for m in ui.els("tr.audit-detail mark.chg")] == ['"enabled": true', '"enabled": false'],
            "enabled marked changed on both sides")
    ui.assert_no_xss()


def settings_route(srv):
    return srv.api("/notify/settings")["code"] != 1204


def case_audit_settings_hidden_from_others(ui):
    for name, role in (("vic", "viewer"), ("otto", "operator")):
        r = ui.srv.api("/user/add", {"username": name, "password": "some-pass-1", "role": role})
        assert r["code"] == 0, r
        ui.logout()
        ui.login(name, "some-pass-1")
        menu = ui.el("nav.menu").text
        assert "Jobs" in menu and "Audit" not in menu and "Settings" not in menu, menu
        # Forced, the page asks the API and shows its refusal.
        ui.go("audit")
        ui.wait(lambda: ui.els("#refused"), "the refusal on the audit page")
        assert ui.el("main h1").text == "Your role cannot open this page"
        assert not ui.els("table.audit")
        ui.go("settings")
        if settings_route(ui.srv):
            ui.wait(lambda: ui.els("#refused"), "the refusal on the settings page")
            assert not ui.els("form.channel")
        else:  # an admin without the channel settings: says so, no crash
            ui.el("#notify-unavailable")
    ui.logout()
    ui.login("admin", ui.srv.password)


def case_settings_page(ui):
    ui.go("settings")
    if not settings_route(ui.srv):
        assert "not available" in ui.el("#notify-unavailable").text
        print("     (no /notify/settings on this server: only the 'not available' message checked)")
        return
    ui.el("form.channel[data-channel=feishu]")
    assert ui.el("#ns-feishu-secret-state").text == "unset"
    ui.el("#ns-feishu-webhook_url").send_keys("https://open.feishu.cn/open-apis/bot/v2/hook/ui-test")
    ui.el("#ns-feishu-secret").send_keys("ui-secret")
    ui.el("#ns-feishu-save").click()
    ui.wait(lambda: ui.srv.api("/notify/settings")["data"]["feishu"]["secret"] == "set", "the secret stored")
    ui.wait(lambda: ui.el("#ns-feishu-secret-state").text == "set", "the 'set' badge")
    assert ui.el("#ns-feishu-secret").get_attribute("value") == ""
    # Saving another member leaves the secret alone (it is not sent).
    url = ui.el("#ns-feishu-webhook_url")
    url.clear()
    url.send_keys("https://open.feishu.cn/open-apis/bot/v2/hook/ui-test-2")
    ui.el("#ns-feishu-save").click()
    ui.wait(lambda: ui.srv.api("/notify/settings")["data"]["feishu"]["webhook_url"].endswith("ui-test-2"), "the new URL")
    assert ui.srv.api("/notify/settings")["data"]["feishu"]["secret"] == "set"
    # The API's error shows on the field it names.
    ui.el("#ns-email-smtp_url").send_keys("smtp://127.0.0.1:1")
    ui.el("#ns-email-save").click()
    ui.wait(lambda: ui.el("#err-email\\.from").text, "the error under email.from")
    # A test on a channel that is off: the API's refusal shown, no crash.
    ui.el("#ns-slack-test").click()
    ui.wait(lambda: "bad" in ui.el("#ns-slack-result").get_attribute("class") and ui.el("#ns-slack-result").text != "Loading…",
            "the test's refusal")
    ui.el("#notify-log h2")
    ui.wait(lambda: ui.els("#notify-log table.alerts") or ui.els("#notify-log p.empty"), "the alert log")


def case_security_headers(ui):
    with urllib.request.urlopen(ui.srv.url + "/ui/") as r:
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        html = r.read().decode()
    asset = html.split('src="', 1)[1].split('"', 1)[0]
    req = urllib.request.Request(ui.srv.url + "/ui/" + asset, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req) as r:
        assert r.headers["Content-Encoding"] == "gzip" and "immutable" in r.headers["Cache-Control"], r.headers
        etag = r.headers["ETag"]
    req = urllib.request.Request(ui.srv.url + "/ui/" + asset, headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("no 304 for a matching ETag")
    except urllib.error.HTTPError as e:
        assert e.code == 304, e.code
    with urllib.request.urlopen(ui.srv.url + "/") as r:  # follows the redirect
        assert r.geturl().endswith("/ui/"), r.geturl()


CASES = [case_login_form, case_editor_preview_and_create, case_editor_selector_and_limits, case_run_now_and_run_log, case_run_log_filters,
         case_nodes_and_leader, case_pause_edit_clone_delete, case_bulk_pause, case_viewer_sees_no_write_actions,
         case_zh_cn_and_remembered, case_deep_url_reload, case_xss_renders_as_text,
         case_live_output, case_audit_page, case_audit_settings_hidden_from_others, case_settings_page,
         case_security_headers]
# Against admin + node on MariaDB + etcd (--cluster).
CLUSTER_CASES = [case_login_form, case_editor_preview_and_create, case_editor_selector_and_limits, case_run_now_and_run_log, case_run_log_filters,
                 case_nodes_and_leader, case_live_follow, case_viewer_sees_no_write_actions]


def main():
    want = [a for a in sys.argv[1:] if a != "--cluster"]
    cluster = "--cluster" in sys.argv[1:]
    cases = [c for c in (CLUSTER_CASES if cluster else CASES) if not want or any(w in c.__name__ for w in want)]
    tmp = tempfile.mkdtemp(prefix="cx-ui-")
    passed = failed = 0
    srv = d = None
    try:
        # A small output cap (the least allowed) so a run's live stream has a cut.
        extra = ["--set", "node.output_limit=1KiB"]
        if cluster:
            from cluster import Cluster  # tests/ui/cluster.py
            srv = Cluster(tmp, BIN, extra)
            print("ui: admin + node on MariaDB + etcd at " + srv.url, flush=True)
        else:
            srv = Server(tmp, extra)
        d = browser()
        ui = UI(srv, d)
        if cases and cases[0] is not case_login_form:
            ui.login("admin", srv.password)
        for c in cases:
            name = c.__name__[5:]
            t0 = time.time()
            try:
                c(ui)
                passed += 1
                print("ok   %s (%.1f s)" % (name, time.time() - t0), flush=True)
            except Exception as e:
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
                traceback.print_exc()
                try:
                    d.save_screenshot(os.path.join(tmp, "fail-%s.png" % name))
                    with open(os.path.join(tmp, "fail-%s.console.log" % name), "w") as f:
                        for entry in d.get_log("browser"):
                            f.write(json.dumps(entry) + "\n")
                    print("     screenshot and console log in " + tmp)
                    if failed and c is case_login_form:
                        ui.login("admin", srv.password)
                except Exception:
                    pass
    except Exception as e:
        failed += 1
        print("FAIL setup: %s" % e)
        traceback.print_exc()
    finally:
        if d is not None:
            d.quit()
        if srv is not None:
            srv.stop()
        if failed == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("ui: logs kept in " + tmp)
    print("ui%s: %d passed, %d failed" % (" (cluster)" if cluster else "", passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

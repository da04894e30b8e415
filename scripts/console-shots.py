#!/usr/bin/python3
"""Takes the README's console screenshots (docs/screenshots/*.png): the
dashboard, the job editor and a running run's page (its output followed
live), light + English and dark + Simplified Chinese, against a `cronix
standalone` seeded with a few jobs.

    scripts/console-shots.py [OUTDIR]      (CX_CRONIX_BIN = the binary)

The zh-CN shots need a CJK font (Debian: fonts-wqy-microhei), else the
browser draws boxes.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ui"))
import test_console as tc  # noqa: E402  (the server and browser helpers)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tc.ROOT, "docs", "screenshots")
os.makedirs(out, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="cx-shots-")
srv = tc.Server(tmp)
node = srv.api("/node/search", {})["data"]["list"][0]["uuid"]


def job(name, command, spec, **kw):
    body = {"name": name, "type": 1, "command": command, "spec": spec, "allocation": 1, "run_on": node}
    body.update(kw)
    r = srv.api("/job/add", body)
    assert r["code"] == 0, r
    return r["data"]["id"]


ids = [
    job("nightly backup", "echo dumping db; echo 42 tables, 3.1 GB; echo backup done", "0 0 2 * * *",
        timezone="Asia/Shanghai", note="pg_dump to the NAS"),
    job("report export", "echo exporting; echo 'upstream returned 502' >&2; exit 3", "0 30 6 * * 1-5"),
    job("cache warmup", "test -f flag || { touch flag; echo 'first try: connection refused'; exit 1; }; echo warmed 1200 keys",
        "0 */15 * * * *", retry_times=2, retry_interval=1, workdir=tmp),
    job("log rotate", "echo rotated", "@daily", enabled=False),
    job("heartbeat", "echo ok", "@every 30s"),
]
for i in ids[:3] + ids[4:]:
    srv.api("/job/once", {"job_id": i})
deadline = time.time() + 30
while time.time() < deadline:
    lst = srv.api("/job/log", {"page_size": 50})["data"]["list"]
    if len(lst) >= 4 and all(r["status"] != "running" for r in lst):
        break
    time.sleep(0.5)
# The run page is shot while a run prints: followed live.
slow = job("data import", "echo 'importing 12 files'; for i in $(seq 1 200); do echo \"file $(( (i - 1) % 12 + 1 ))/12: batch $i, $((i * 500)) rows\"; sleep 0.4; done",
           "0 0 4 * * *", note="streams its progress")
srv.api("/job/once", {"job_id": slow})
deadline = time.time() + 30
while time.time() < deadline:
    running = srv.api("/job/running", {"job_id": slow})["data"]["list"]
    if running:
        break
    time.sleep(0.2)
live_run = running[0]["run_id"]

d = tc.browser()
d.set_window_size(1200, 900)
ui = tc.UI(srv, d)
ui.login("admin", srv.password)
for theme, lang in (("light", "en"), ("dark", "zh-CN")):
    d.execute_script("localStorage.setItem('cx.theme', arguments[0]); localStorage.setItem('cx.lang', arguments[1])",
                     theme, lang)
    for name, page, ready in (("dashboard", "", ".chart"), ("job-editor", "jobs/%d" % ids[0], "#cron-preview ol li"),
                              ("run", "runs/%d" % live_run, "#run-output")):
        ui.go(page)
        ui.el(ready)
        if name == "run":  # a few live lines in
            ui.wait(lambda: ui.el("#run-output").text.count("batch") >= 6, "live lines")
            d.execute_script("window.scrollTo(0, 300)")  # the output in view
        time.sleep(0.4)
        path = os.path.join(out, "%s-%s-%s.png" % (name, theme, lang))
        d.save_screenshot(path)
        print(path)
d.quit()
srv.stop()

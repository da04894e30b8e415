#!/usr/bin/python3
"""The console's speed (issue 16), printed by `make bench`: with 100 000
jobs in the store (SQLite, inserted directly), the jobs page's time to
interactive after a full load (navigation start -> the list rendered and
usable, from the Performance API), a page change (click -> next page
rendered) and a name search, each the median of BENCH_CONSOLE_TRIALS
(default 7) in headless Chromium; and the assets' total gzipped size.

    bench/console_bench.py            (CX_CRONIX_BIN = the binary)
"""
import gzip
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "ui"))
os.environ.setdefault("CX_CRONIX_BIN", os.path.join(ROOT, "build", "cronix"))
import test_console as tc  # noqa: E402

JOBS = int(os.environ.get("BENCH_CONSOLE_JOBS", "100000"))
TRIALS = int(os.environ.get("BENCH_CONSOLE_TRIALS", "7"))


def assets_gzip():
    total = files = 0
    for dirpath, _, names in os.walk(os.path.join(ROOT, "web")):
        for n in names:
            with open(os.path.join(dirpath, n), "rb") as f:
                total += len(gzip.compress(f.read(), 9, mtime=0))
                files += 1
    return total, files


def seed(tmp):
    srv = tc.Server(tmp)
    node = srv.api("/node/search", {})["data"]["list"][0]["uuid"]
    r = srv.api("/job/add", {"name": "bench job 0", "type": 1, "command": "true", "spec": "0 0 3 * * *",
                             "allocation": 1, "run_on": node, "enabled": False})
    assert r["code"] == 0, r
    srv.stop()
    db = sqlite3.connect(os.path.join(tmp, "data", "cronix.db"))
    cols = [c[1] for c in db.execute("PRAGMA table_info(cronix_job)") if c[1] not in ("id", "name")]
    db.execute("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
               "INSERT INTO cronix_job (name, %s) SELECT 'bench job ' || n, %s FROM c, cronix_job t WHERE t.id = 1"
               % (", ".join(cols), ", ".join("t." + x for x in cols)), (JOBS - 1,))
    db.commit()
    n = db.execute("SELECT count(*) FROM cronix_job").fetchone()[0]
    db.close()
    return n


def main():
    tmp = tempfile.mkdtemp(prefix="cx-console-bench-")
    n = seed(tmp)
    srv = tc.Server(tmp)
    d = tc.browser()
    ui = tc.UI(srv, d)
    try:
        ui.login("admin", srv.password)
        ready = "return window.__cxJobsReady && document.querySelector('main[data-ready]') ? window.__cxJobsReady : null"
        load, change, search = [], [], []
        for _ in range(TRIALS):
            ui.go("jobs")
            r = ui.wait(lambda: d.execute_script(ready), "the jobs page")
            load.append(r["at"])
            d.execute_script("window.__cxJobsReady = null; window.__t0 = performance.now();"
                             "document.querySelectorAll('.pager button')[1].click()")
            r = ui.wait(lambda: d.execute_script(ready), "the next page")
            change.append(r["at"] - d.execute_script("return window.__t0"))
            q = ui.el("#q")
            q.clear()
            q.send_keys("bench job 9999")
            d.execute_script("window.__cxJobsReady = null; window.__t0 = performance.now();"
                             "document.querySelector('form.filters').requestSubmit()")
            r = ui.wait(lambda: d.execute_script(ready), "the search")
            search.append(r["at"] - d.execute_script("return window.__t0"))
        gz, files = assets_gzip()
        med = statistics.median
        print("| console, %d jobs (median of %d) | ms |" % (n, TRIALS))
        print("|---|---:|")
        print("| jobs page: full load to interactive | %.0f |" % med(load))
        print("| jobs page: page change | %.0f |" % med(change))
        print("| jobs page: name search | %.0f |" % med(search))
        print("assets: %d files, %.1f KB gzipped in all" % (files, gz / 1024))
    finally:
        d.quit()
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

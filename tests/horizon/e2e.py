#!/usr/bin/env python3
"""The Horizon panel end to end, in headless Chromium, against the
functional environment's real Keystone and Cinder (tools/functional-env up)
and a real staffeln-api on the port Cinder's backup:delete policy asks.

    .venv-horizon/bin/python tests/horizon/e2e.py check [--screenshot PATH]
    .venv-horizon/bin/python tests/horizon/e2e.py load-time [--backups 1000]

``check``: a tenant logs in to Horizon (the stock openstack_dashboard with
the plugin enabled) through Keystone, sees its backups and Staffeln's on the
Backups panel, pages, filters, sees Delete on its own backup and not on
Staffeln's (and the same on the stock Volume Backups panel), deletes its own
through the panel, and a delete of Staffeln's backup sent straight to Cinder
with its token is refused (403).

``load-time``: the same project holding N backups (two made for real, the
rest rows copied from them in Cinder's database, half of them marked and
recorded as Staffeln's), and the time the browser takes to load the panel's
first page, the next one and a filtered one; printed, never asserted.

Everything it creates (project, user, volume, backups, its staffeln-api and
Horizon processes) is removed or stopped when it ends, also on failure.
"""

import argparse
import atexit
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("STAFFELN_FUNCTIONAL_HOME")
            or Path.home() / ".cache/staffeln-functional")
ENV_JSON = HOME / "run/env.json"
# staffeln-api and staffeln-manage: the functional test passes its own build.
BIN_DIR = Path(os.environ.get("STAFFELN_E2E_BIN_DIR") or
               Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
               / "debug")
HANG = 120


class Failed(Exception):
    pass


def say(msg):
    print("==> %s" % msg, file=sys.stderr, flush=True)


def need(cond, what):
    if not cond:
        raise Failed(what)


def wait_for(what, check, timeout=HANG, every=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed("timed out waiting for %s" % what)
        time.sleep(every)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- preconditions ---------------------------------------------------------

def environment():
    try:
        import selenium  # noqa: F401
        import keystoneauth1  # noqa: F401
        import django  # noqa: F401
    except ImportError as e:
        raise Failed("%s: run this with .venv-horizon/bin/python (made by "
                     "tools/setup-test-env from tools/horizon-requirements"
                     ".txt)" % e)
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        need(os.path.exists(tool), "%s is missing: apt-get install chromium "
             "chromium-driver (tools/setup-test-env does)" % tool)
    need(ENV_JSON.exists(), "%s is missing: start the functional environment "
         "with tools/functional-env up" % ENV_JSON)
    env = json.loads(ENV_JSON.read_text())
    need(port_open(env["ports"]["keystone"]) and
         port_open(env["ports"]["cinder"]),
         "Keystone or Cinder of the functional environment does not answer: "
         "tools/functional-env status")
    # staffeln-api goes where Cinder's policy asks, unless told otherwise
    # (STAFFELN_E2E_API_PORT: the panel then asks this one, and Cinder keeps
    # asking whatever guard answers on the policy's port).
    env["api_port"] = int(os.environ.get("STAFFELN_E2E_API_PORT") or
                          env["ports"]["guard"])
    need(not port_open(env["api_port"]),
         "port %s (staffeln-api, where Cinder's policy asks) is taken: "
         "another functional run is going on; run this after it"
         % env["api_port"])
    for binary in ("staffeln-api", "staffeln-manage"):
        need((BIN_DIR / binary).exists(),
             "%s is missing: cargo build --bin %s" % (BIN_DIR / binary, binary))
    return env


# --- the cloud ---------------------------------------------------------------

class Cloud(object):
    """A tenant project, its user, and Staffeln's service user in it."""

    def __init__(self, env):
        from keystoneauth1 import session
        from keystoneauth1.identity import v3
        from keystoneclient.v3 import client as ks_client

        self.env = env
        self.auth_url = env["auth_url"]
        admin = env["admin"]
        self.admin = session.Session(auth=v3.Password(
            auth_url=self.auth_url, **admin))
        self.keystone = ks_client.Client(session=self.admin,
                                         interface="public")
        tag = uuid.uuid4().hex[:8]
        self.password = "e2e-" + uuid.uuid4().hex
        self.project = self.keystone.projects.create(
            "hz-e2e-" + tag, domain="default")
        atexit.register(self._remove_accounts)
        self.username = "hz-e2e-" + tag
        self.user = self.keystone.users.create(
            self.username, domain="default", password=self.password,
            default_project=self.project)
        member = self.keystone.roles.find(name="member")
        self.keystone.roles.grant(member, user=self.user,
                                  project=self.project)
        staffeln = self.keystone.users.find(name=env["staffeln"]["username"])
        self.keystone.roles.grant(member, user=staffeln, project=self.project)
        self.tenant = self._session(self.username, self.password)
        self.staffeln = self._session(env["staffeln"]["username"],
                                      env["staffeln"]["password"])
        self.volumes = []
        self.backups = []
        self.servers = []

    def _session(self, username, password):
        from keystoneauth1 import session
        from keystoneauth1.identity import v3
        return session.Session(auth=v3.Password(
            auth_url=self.auth_url, username=username, password=password,
            user_domain_name="Default", project_id=self.project.id))

    def cinder(self, sess, microversion="3.43"):
        from cinderclient import client
        return client.Client(microversion, session=sess,
                             region_name=self.env["region"],
                             interface="public")

    def cinder_url(self):
        return self.tenant.get_endpoint(service_type="block-storage",
                                        interface="public")

    def volume(self, name):
        c = self.cinder(self.tenant)
        v = c.volumes.create(1, name=name)
        self.volumes.append(v.id)
        wait_for("volume %s available" % name,
                 lambda: c.volumes.get(v.id).status == "available")
        return v.id

    def server(self, name, boot_volume):
        """A server booted from ``boot_volume`` (no network), ACTIVE."""
        from novaclient import client as nova_client
        c = self.cinder(self.tenant)
        c.volumes.set_bootable(boot_volume, True)
        nova = nova_client.Client("2.67", session=self.tenant,
                                  region_name=self.env["region"],
                                  interface="public")
        flavor = nova.flavors.find(name=self.env["flavor"])
        s = nova.servers.create(name, image=None, flavor=flavor, nics="none",
                                block_device_mapping_v2=[{
                                    "boot_index": 0, "uuid": boot_volume,
                                    "source_type": "volume",
                                    "destination_type": "volume",
                                    "delete_on_termination": False}])
        self.servers.append(s.id)

        def active():
            status = nova.servers.get(s.id).status
            if status == "ERROR":
                raise Failed("server %s went to ERROR" % name)
            return status == "ACTIVE"
        wait_for("server %s ACTIVE" % name, active)
        self.nova = nova
        return s.id

    def backup(self, volume_id, name, by_staffeln, server_id=None):
        sess = self.staffeln if by_staffeln else self.tenant
        c = self.cinder(sess)
        metadata = {}
        if by_staffeln:
            # What the conductor writes on the backups it makes.
            metadata = {"__automated_backup": "True"}
            if server_id:
                metadata["__staffeln_instance_id"] = server_id
        b = c.backups.create(volume_id, name=name, metadata=metadata,
                             incremental=False, force=True)
        self.backups.append(b.id)

        def done():
            status = c.backups.get(b.id).status
            if status == "error":
                raise Failed("backup %s failed in Cinder" % name)
            return status == "available"
        wait_for("backup %s available" % name, done, timeout=300)
        # A new second for the next one: Cinder orders by created_at.
        time.sleep(1.1)
        return b.id

    def _remove_accounts(self):
        for s in getattr(self, "servers", []):
            try:
                self.nova.servers.delete(s)
                wait_for("server deleted", lambda: not [
                    x for x in self.nova.servers.list() if x.id == s],
                    timeout=60)
            except Exception:
                pass
        admin_cinder = self.cinder(self.admin)
        for b in getattr(self, "backups", []):
            try:
                admin_cinder.backups.delete(b, force=True)
            except Exception:
                pass
        for v in getattr(self, "volumes", []):
            try:
                wait_for("backups of the volume gone", lambda: not [
                    b for b in admin_cinder.backups.list(search_opts={
                        "all_tenants": 1, "volume_id": v})
                    if b.status not in ("deleted",)], timeout=60)
            except Exception:
                pass
            try:
                admin_cinder.volumes.delete(v, cascade=True)
            except Exception:
                pass
        try:
            self.keystone.users.delete(self.user)
        except Exception:
            pass
        try:
            self.keystone.projects.delete(self.project)
        except Exception:
            pass


# --- the processes -----------------------------------------------------------

class Processes(object):
    def __init__(self):
        self.children = []
        self.dir = tempfile.TemporaryDirectory(prefix="staffeln-hz-e2e-")
        atexit.register(self.stop)

    def start(self, name, argv, env=None, cwd=None):
        log = open(os.path.join(self.dir.name, name + ".log"), "w")
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                 start_new_session=True)
        self.children.append((name, child, log))
        return child

    def log(self, name):
        path = os.path.join(self.dir.name, name + ".log")
        return Path(path).read_text()[-3000:] if os.path.exists(path) else ""

    def stop(self):
        for name, child, log in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            log.close()
        self.children = []


def start_staffeln_api(env, procs):
    """staffeln-api as the devstack plugin configures it, on SQLite, with a
    generous request timeout: Keystone answers slowly on a loaded machine,
    and a 503 there would only hide Delete (fail closed)."""
    d = procs.dir.name
    conf = os.path.join(d, "staffeln.conf")
    db = os.path.join(d, "staffeln.sqlite")
    Path(conf).write_text(
        "[DEFAULT]\nuse_stderr = true\n"
        "[database]\nconnection = sqlite:///%s\n"
        "[api]\nhost = 127.0.0.1\nport = %d\nrequest_timeout = 60\n"
        "[openstack]\nauth_url = %s\nusername = %s\npassword = %s\n"
        "user_domain_name = Default\nproject_name = service\n"
        "project_domain_name = Default\nregion_name = %s\n"
        "interface = public\n" % (
            db, env["api_port"], env["auth_url"],
            env["staffeln"]["username"], env["staffeln"]["password"],
            env["region"]))
    out = subprocess.run([str(BIN_DIR / "staffeln-manage"),
                          "--config-file", conf, "db", "upgrade"],
                         capture_output=True, text=True)
    need(out.returncode == 0, "staffeln-manage db upgrade: %s" % out.stderr)
    child = procs.start("staffeln-api", [str(BIN_DIR / "staffeln-api"),
                                         "--config-file", conf])
    wait_for("staffeln-api listening", lambda: child.poll() is not None or
             port_open(env["api_port"]))
    need(child.poll() is None,
         "staffeln-api exited: %s" % procs.log("staffeln-api"))
    return "http://127.0.0.1:%d" % env["api_port"], db


def start_horizon(env, procs, api_url, page_size):
    port = free_port()
    penv = dict(os.environ)
    penv.update({
        "PYTHONPATH": os.pathsep.join([str(REPO / "horizon"),
                                       str(REPO / "tests/horizon")]),
        "DJANGO_SETTINGS_MODULE": "e2e_settings",
        "STAFFELN_E2E_KEYSTONE_URL": env["auth_url"],
        "STAFFELN_E2E_API_URL": api_url,
        "STAFFELN_E2E_PAGE_SIZE": str(page_size),
    })
    child = procs.start("horizon", [
        sys.executable, "-m", "django", "runserver", "--noreload",
        "--nothreading", "127.0.0.1:%d" % port], env=penv)
    wait_for("Horizon listening", lambda: child.poll() is not None or
             port_open(port), timeout=HANG)
    need(child.poll() is None, "Horizon exited: %s" % procs.log("horizon"))
    return "http://127.0.0.1:%d" % port


# --- the browser -------------------------------------------------------------

def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1500,1000", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                              options=opts)
    driver.set_page_load_timeout(HANG)
    atexit.register(driver.quit)
    BROWSERS.append(driver)
    return driver


BROWSERS = []


def keep_evidence():
    """The page a failed run stopped on, for the one who reads the error."""
    for driver in BROWSERS:
        try:
            base = os.path.join(tempfile.gettempdir(), "staffeln-hz-e2e-failed")
            driver.save_screenshot(base + ".png")
            Path(base + ".html").write_text(driver.page_source)
            print("e2e: the last page: %s.png, %s.html (%s)" % (
                base, base, driver.current_url), file=sys.stderr)
        except Exception:
            pass


def login(driver, base, cloud):
    from selenium.webdriver.common.by import By
    driver.get(base + "/auth/login/")
    driver.find_element(By.ID, "id_username").send_keys(cloud.username)
    driver.find_element(By.ID, "id_password").send_keys(cloud.password)
    driver.find_element(By.ID, "loginBtn").click()
    wait_for("the login to land on a project page",
             lambda: "/auth/login" not in driver.current_url)
    need("Sign Out" in driver.page_source or
         cloud.username in driver.page_source,
         "login failed: %s" % driver.current_url)


def rows(driver):
    from selenium.webdriver.common.by import By
    return [tr.get_attribute("data-object-id") for tr in
            driver.find_elements(By.CSS_SELECTOR,
                                 "table#staffeln_backups tbody tr"
                                 "[data-object-id]")]


def has_delete(driver, table, backup_id):
    from selenium.webdriver.common.by import By
    return bool(driver.find_elements(
        By.ID, "%s__row_%s__action_delete" % (table, backup_id)))


def filter_by(driver, field, value):
    from selenium.webdriver.common.by import By
    search = driver.find_element(By.CSS_SELECTOR,
                                 "#staffeln_backups .table_search")
    search.find_element(By.CSS_SELECTOR, "button.dropdown-toggle").click()
    search.find_element(By.CSS_SELECTOR,
                        'a[data-select-value="%s"]' % field).click()
    box = search.find_element(By.NAME, "staffeln_backups__filter__q")
    box.clear()
    box.send_keys(value)
    # A message toast may cover the button: click it in the page, as the
    # button's own handler would be run by a click.
    button = search.find_element(By.ID, "staffeln_backups__action_filter")
    driver.execute_script("arguments[0].click();", button)
    wait_for("the filtered page", lambda: driver.execute_script(
        "return document.readyState") == "complete" and value in
        driver.find_element(By.NAME, "staffeln_backups__filter__q")
        .get_attribute("value"))


def next_page(driver):
    from selenium.webdriver.common.by import By
    link = driver.find_element(By.PARTIAL_LINK_TEXT, "Next")
    href = link.get_attribute("href")
    link.click()
    wait_for("the next page", lambda: driver.current_url == href)


# --- check ---------------------------------------------------------------------

def check(args):
    env = environment()
    procs = Processes()
    say("tenant, volume and backups in the functional environment")
    cloud = Cloud(env)
    vol = cloud.volume("hz-data")
    srv = cloud.server("hz-web", vol)
    own1 = cloud.backup(vol, "own-1", False)
    st1 = cloud.backup(vol, "staffeln-1", True, srv)
    own2 = cloud.backup(vol, "own-2", False)
    st2 = cloud.backup(vol, "staffeln-2", True, srv)
    own3 = cloud.backup(vol, "own-3", False)
    say("staffeln-api and Horizon")
    api_url, _db = start_staffeln_api(env, procs)
    base = start_horizon(env, procs, api_url, page_size=2)
    driver = browser()
    login(driver, base, cloud)

    say("the panel: newest first, two a page")
    driver.get(base + "/project/staffeln_backups/")
    need(rows(driver) == [own3, st2], "first page: %s" % rows(driver))
    need(has_delete(driver, "staffeln_backups", own3),
         "no Delete on the tenant's own backup")
    need(not has_delete(driver, "staffeln_backups", st2),
         "Delete offered on Staffeln's backup")
    page = driver.page_source
    for text in ("Staffeln", "Manual", "hz-data", "hz-web", "Full", "1 GiB"):
        need(text in page, "%r is not on the page" % text)
    if args.screenshot:
        Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.screenshot)
        say("screenshot: %s" % args.screenshot)
    next_page(driver)
    need(rows(driver) == [own2, st1], "second page: %s" % rows(driver))
    next_page(driver)
    need(rows(driver) == [own1], "third page: %s" % rows(driver))

    say("filters")
    filter_by(driver, "made_by", "staffeln")
    need(rows(driver) == [st2, st1], "made by Staffeln: %s" % rows(driver))
    need(not any(has_delete(driver, "staffeln_backups", b)
                 for b in (st1, st2)), "Delete on Staffeln's, filtered")
    filter_by(driver, "name", "own-2")
    need(rows(driver) == [own2], "name own-2: %s" % rows(driver))
    filter_by(driver, "server", "hz-web")
    need(rows(driver) == [own3, st2], "server hz-web: %s" % rows(driver))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    filter_by(driver, "created", "%s..%s" % (today, today))
    need(rows(driver) == [own3, st2], "created today: %s" % rows(driver))
    filter_by(driver, "created", "2001-01-01..2001-01-02")
    need(rows(driver) == [], "created in 2001: %s" % rows(driver))
    filter_by(driver, "status", "nonsense")
    need("is not one of" in driver.page_source and
         "Traceback" not in driver.page_source,
         "a bad filter value is not Horizon's error message")
    need("Unable to" not in driver.page_source,
         "an error message on the panel")
    filter_by(driver, "name", " ")

    say("the stock Volume Backups panel")
    driver.get(base + "/project/backups/")
    need(has_delete(driver, "volume_backups", own3),
         "stock panel: no Delete on the tenant's own backup")
    need(not has_delete(driver, "volume_backups", st2),
         "stock panel: Delete offered on Staffeln's backup")

    say("a delete of Staffeln's backup sent to Cinder by URL")
    import requests
    url = "%s/backups/%s" % (cloud.cinder_url(), st2)
    resp = requests.delete(url, headers={
        "X-Auth-Token": cloud.tenant.get_token(),
        "OpenStack-API-Version": "volume 3.43"}, timeout=60)
    need(resp.status_code == 403, "Cinder answered %s: %s" % (
        resp.status_code, resp.text[:300]))
    need(cloud.cinder(cloud.tenant).backups.get(st2).status == "available",
         "Staffeln's backup changed after the refused delete")

    say("the tenant deletes its own backup in the panel")
    from selenium.webdriver.common.by import By
    driver.get(base + "/project/staffeln_backups/")
    driver.find_element(
        By.ID, "staffeln_backups__row_%s__action_delete" % own3).click()
    confirm = wait_for("the confirmation", lambda: [
        b for b in driver.find_elements(By.CSS_SELECTOR,
                                        ".modal-footer .btn-danger")
        if b.is_displayed()])
    confirm[0].click()
    wait_for("the deletion message", lambda: "Scheduled deletion" in
             driver.page_source)
    c = cloud.cinder(cloud.tenant)

    def gone():
        try:
            return c.backups.get(own3).status in ("deleting", "deleted")
        except Exception as e:  # NotFound once deleted
            return "could not be found" in str(e) or "404" in str(e)
    wait_for("Cinder deleting the tenant's backup", gone)
    say("end to end: ok")


# --- load time -------------------------------------------------------------------

def mysql(env, database, sql):
    m = env["mysql"]
    argv = ["mariadb", "-h", m["host"], "-P", str(m["port"]), "-u",
            m["user"], "-N", "-B", database, "-e", sql]
    penv = dict(os.environ, MYSQL_PWD=m.get("password") or "")
    out = subprocess.run(argv, capture_output=True, text=True, env=penv)
    need(out.returncode == 0, "mariadb: %s" % out.stderr)
    return out.stdout


def fill_cinder(env, cloud, templates, total):
    """Copies the real backups' rows in Cinder's database until the project
    holds ``total`` backups, one a minute back in time, every other one a
    copy of Staffeln's (with its metadata)."""
    db = [d for d in env["db"].values() if "cinder" in d][0].rsplit("/", 1)[1]
    db = db.split("?")[0]
    cols = mysql(env, db, "SELECT column_name FROM information_schema.columns"
                 " WHERE table_schema = DATABASE() AND table_name = 'backups'"
                 " ORDER BY ordinal_position").split()
    own, staffelns = templates
    per = (total - 2) // 2
    for template, offset in ((own, 0), (staffelns, per)):
        exprs = []
        for c in cols:
            if c == "id":
                exprs.append("UUID()")
            elif c == "created_at":
                exprs.append("DATE_SUB(b.created_at, INTERVAL (s.seq + %d) "
                             "MINUTE)" % offset)
            elif c == "display_name":
                exprs.append("CONCAT(b.display_name, '-', s.seq)")
            else:
                exprs.append("b.`%s`" % c)
        mysql(env, db, "INSERT INTO backups (%s) SELECT %s FROM backups b "
              "JOIN seq_1_to_%d s WHERE b.id = '%s'" % (
                  ", ".join("`%s`" % c for c in cols), ", ".join(exprs), per,
                  template))
    mysql(env, db, "INSERT INTO backup_metadata (created_at, deleted, "
          "backup_id, `key`, value) SELECT NOW(), 0, b.id, "
          "'__automated_backup', 'True' FROM backups b WHERE b.project_id = "
          "'%s' AND b.display_name LIKE 'staffeln-1-%%'" % cloud.project.id)
    ids = mysql(env, db, "SELECT id, volume_id, created_at FROM backups "
                "WHERE project_id = '%s' AND deleted = 0 AND display_name "
                "LIKE 'staffeln-1%%'" % cloud.project.id).splitlines()
    count = int(mysql(env, db, "SELECT COUNT(*) FROM backups WHERE "
                      "project_id = '%s' AND deleted = 0"
                      % cloud.project.id).strip())
    return count, [line.split("\t") for line in ids]


def record_in_staffeln(db, project_id, rows):
    """Staffeln's record (backup_data) of its backups, as the conductor
    writes it once Cinder reports them available."""
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO backup_data (backup_id, project_id, volume_id, "
        "instance_id, backup_completed, incremental, created_at) VALUES "
        "(?, ?, ?, '', 1, 0, ?)",
        [(r[0], project_id, r[1], r[2]) for r in rows])
    con.commit()
    con.close()


def timed_load(driver, url, runs):
    times = []
    for _ in range(runs):
        driver.get(url)
        t = driver.execute_script(
            "var t = performance.getEntriesByType('navigation')[0];"
            "return [t.responseStart - t.requestStart, t.loadEventEnd];")
        times.append((t[0], t[1]))
    return (statistics.median(x[0] for x in times),
            statistics.median(x[1] for x in times))


def load_time(args):
    env = environment()
    procs = Processes()
    say("a project with %d backups" % args.backups)
    cloud = Cloud(env)
    vol = cloud.volume("hz-load")
    own = cloud.backup(vol, "own-1", False)
    st = cloud.backup(vol, "staffeln-1", True)
    count, staffelns = fill_cinder(env, cloud, (own, st), args.backups)
    api_url, db = start_staffeln_api(env, procs)
    record_in_staffeln(db, cloud.project.id, staffelns)
    base = start_horizon(env, procs, api_url, page_size=20)
    driver = browser()
    login(driver, base, cloud)
    page = base + "/project/staffeln_backups/"
    driver.get(page)  # warm: templates, SCSS, Keystone catalog
    need(len(rows(driver)) == 20, "the first page shows %d rows"
         % len(rows(driver)))
    first = timed_load(driver, page, args.runs)
    marker = rows(driver)[-1]
    second = timed_load(driver, page + "?backup_marker=" + marker, args.runs)
    filter_by(driver, "made_by", "manual")
    need(len(rows(driver)) == 20, "manual filter shows %d" % len(rows(driver)))
    filtered = timed_load(driver, page, args.runs)
    stock = timed_load(driver, base + "/project/backups/", args.runs)
    print("Horizon panel load time, project with %d backups (%d recorded by "
          "Staffeln), page size 20, median of %d loads, headless Chromium, "
          "Django runserver:" % (count, len(staffelns), args.runs))
    for label, (server, total) in (
            ("first page", first), ("next page", second),
            ("filter made_by=manual", filtered),
            ("stock Volume Backups panel", stock)):
        print("  %-28s server %6.0f ms   page loaded %6.0f ms"
              % (label, server, total))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--screenshot", default=None)
    lt = sub.add_parser("load-time")
    lt.add_argument("--backups", type=int, default=1000)
    lt.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        (check if args.cmd == "check" else load_time)(args)
    except Failed as e:
        keep_evidence()
        print("e2e: FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

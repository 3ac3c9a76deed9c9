"""Setup steps of tools/functional-env that need the OpenStack libraries; run
with the functional venv's Python: `bootstrap.py STEP FACTS_JSON`.

* databases: drops and creates the staffeln_fn_* databases.
* keystone:  the service project, the services' users, the catalog.
* services:  waits for the Cinder and Nova services, maps the compute host
             into its cell, and creates the flavor the scenarios boot.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pymysql
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client


def say(msg):
    print(msg, flush=True)


def databases(facts):
    m = facts["mysql"]
    conn = pymysql.connect(host=m["host"], port=m["port"], user=m["user"], password=m["password"])
    with conn.cursor() as cur:
        for url in facts["db"].values():
            name = url.rsplit("/", 1)[1].split("?")[0]
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            say(f"database {name} created")
    conn.close()


def admin_session(facts):
    a = facts["admin"]
    auth = v3.Password(auth_url=facts["auth_url"], username=a["username"], password=a["password"],
                       project_name=a["project_name"], user_domain_name=a["user_domain_name"],
                       project_domain_name=a["project_domain_name"])
    return ks_session.Session(auth=auth)


def keystone(facts):
    ks = ks_client.Client(session=admin_session(facts), interface="public")
    roles = {r.name: r for r in ks.roles.list()}
    for name in ("admin", "member", "reader", "service"):
        if name not in roles:
            roles[name] = ks.roles.create(name)
    projects = {p.name: p for p in ks.projects.list()}
    service = projects.get("service") or ks.projects.create("service", domain="default")
    for user in ("nova", "cinder", "placement", "neutron"):
        u = ks.users.create(user, domain="default", password=facts["password"])
        for role in ("admin", "service"):
            ks.roles.grant(roles[role], user=u, project=service)
    e = facts["endpoints"]
    catalog = [
        ("placement", "placement", e["placement"]),
        ("nova", "compute", e["compute"]),
        ("cinder", "block-storage", e["block-storage"]),
        ("cinderv3", "volumev3", e["block-storage"]),
        ("neutron", "network", e["network"]),
    ]
    for name, kind, url in catalog:
        svc = ks.services.create(name, type=kind)
        for interface in ("public", "internal"):
            ks.endpoints.create(svc, url, interface=interface, region=facts["region"])
        say(f"{kind} at {url}")


def wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                say(f"{what}: ok")
                return
        except Exception as err:  # the services are still starting
            last = err
        time.sleep(1)
    raise SystemExit(f"{what}: not within {timeout} s (last error: {last})")


def services(facts):
    sess = admin_session(facts)
    cinder = {"service_type": "block-storage", "interface": "public"}
    nova = {"service_type": "compute", "interface": "public"}

    def cinder_up():
        body = sess.get("/os-services", endpoint_filter=cinder).json()
        up = {s["binary"] for s in body["services"] if s["state"] == "up" and s["status"] == "enabled"}
        return {"cinder-scheduler", "cinder-volume", "cinder-backup"} <= up

    def compute_up():
        body = sess.get("/os-services", endpoint_filter=nova).json()
        return any(s["binary"] == "nova-compute" and s["state"] == "up" for s in body["services"])

    wait("cinder-scheduler, cinder-volume and cinder-backup up", cinder_up, 180)
    wait("nova-compute up", compute_up, 180)
    venv = Path(facts["venv"])
    conf = Path(facts["run_dir"]) / "nova/nova.conf"

    def mapped():
        subprocess.run([str(venv / "bin/nova-manage"), "--config-file", str(conf), "cell_v2", "discover_hosts"],
                       check=True, capture_output=True)
        body = sess.get("/os-hypervisors", endpoint_filter=nova).json()
        return len(body["hypervisors"]) > 0

    wait("compute host mapped to cell1", mapped, 120)
    sess.post("/flavors", endpoint_filter=nova, json={"flavor": {
        "name": facts["flavor"], "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": True}})
    say(f"flavor {facts['flavor']} created")


def main():
    step, facts = sys.argv[1], json.loads(sys.argv[2])
    {"databases": databases, "keystone": keystone, "services": services}[step](facts)


if __name__ == "__main__":
    main()

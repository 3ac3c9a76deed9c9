"""Cinder's `backup:delete` rule evaluated by the stock oslo.policy Enforcer,
with the target Cinder 29 builds for a backup (cinder/context.py authorize,
Backup.obj_to_primitive) and a project member's credentials.

usage: policy_check.py BASE_URL CASES_JSON [CONTENT_TYPE [CA_FILE]]

BASE_URL is http://127.0.0.1:PORT or https://…; CASES_JSON a list of
{"label", "id", "project_id", "user_project", "admin"} with optional
"metadata" (the backup's, default {"purpose": "probe"}) and "user_id" (the
caller's). Prints one JSON object {label: true | false | "raised: <exception>"}.
"""
import json
import sys

from oslo_config import cfg
from oslo_policy import policy

base, cases = sys.argv[1], json.loads(sys.argv[2])
content_type = sys.argv[3] if len(sys.argv) > 3 else "application/x-www-form-urlencoded"
ca_file = sys.argv[4] if len(sys.argv) > 4 else None

conf = cfg.ConfigOpts()
conf(args=[], default_config_files=[])
enforcer = policy.Enforcer(conf, use_conf=False)
conf.set_override("remote_content_type", content_type, group="oslo_policy")
conf.set_override("remote_timeout", 30, group="oslo_policy")
if ca_file:
    conf.set_override("remote_ssl_verify_server_crt", True, group="oslo_policy")
    conf.set_override("remote_ssl_ca_crt_file", ca_file, group="oslo_policy")
# The rule operators put in /etc/cinder/policy.yaml (staffeln's README).
rules = {
    "admin_api": "is_admin:True",
    "backup:delete": "rule:admin_api or (project_id:%(project_id)s and role:member and "
    + base + "/v1/backup?backup_id=%(id)s)",
}
enforcer.set_rules(policy.Rules.from_dict(rules), overwrite=True, use_conf=False)

USER = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
results = {}
for case in cases:
    target = {
        "project_id": case["project_id"], "user_id": USER, "id": case["id"],
        "volume_id": "5c3f1b4a-8e2d-4f6a-9b1c-7d0e2f3a4b5c",
        "host": "backup-host-1", "availability_zone": "nova",
        "container": "volumebackups", "parent_id": None, "status": "available",
        "fail_reason": None, "size": 1, "display_name": "nightly",
        "display_description": None,
        "service_metadata": "volume_5c3f/20261125100000/az_nova_backup_0b9a",
        "service": "cinder.backup.drivers.swift.SwiftBackupDriver",
        "object_count": 0, "temp_volume_id": None, "temp_snapshot_id": None,
        "num_dependent_backups": 0, "snapshot_id": None,
        "data_timestamp": "2026-11-25T10:00:00Z", "restore_volume_id": None,
        "metadata": case.get("metadata", {"purpose": "probe"}), "encryption_key_id": None,
        "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
        "deleted_at": None, "deleted": False,
    }
    creds = {
        "is_admin": bool(case.get("admin")), "user_id": case.get("user_id", USER),
        "user_domain_id": "default",
        "system_scope": None, "domain_id": None, "project_id": case["user_project"],
        "project_domain_id": "default",
        "roles": ["admin", "member", "reader"] if case.get("admin") else ["member", "reader"],
        "is_admin_project": True, "service_user_id": None, "service_user_domain_id": None,
        "service_project_id": None, "service_project_domain_id": None, "service_roles": [],
    }
    try:
        results[case["label"]] = enforcer.enforce("backup:delete", target, creds, do_raise=False)
    except Exception as exc:  # a refused connection or a timeout raises
        results[case["label"]] = "raised: %s" % type(exc).__name__
print(json.dumps(results))

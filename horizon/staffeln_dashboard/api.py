"""The panel's I/O: Cinder (the backups, their volumes), Nova (server names)
and staffeln-api (the backups Staffeln recorded), each with the user's own
token. The decisions are in ``rules``.
"""

import datetime

from django.conf import settings
import requests

from openstack_dashboard.api import cinder
from openstack_dashboard.api import nova

from staffeln_dashboard import rules

# Backup metadata is in Cinder's backup detail from microversion 3.43 on.
CINDER_MICROVERSION = "3.43"


class StaffelnApiError(Exception):
    """staffeln-api could not say which backups Staffeln recorded."""


class Backup(object):
    """One row of the panel."""

    def __init__(self, id, name, status, size, incremental, created_at,
                 volume_id, metadata, automated=False, server_id=None):
        self.id = id
        self.name = name
        self.status = status
        self.size = size
        self.incremental = incremental
        self.created_at = created_at
        self.volume_id = volume_id
        self.metadata = metadata or {}
        self.automated = automated
        self.server_id = server_id
        self.server_name = None
        self.volume_name = None

    @property
    def marked(self):
        return rules.is_marked_automated(self.metadata)


def parse_time(text):
    """Cinder's ``created_at`` (naive UTC, ISO 8601) as a datetime."""
    text = (text or "").rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            pass
    return datetime.datetime.min


def _row(b):
    metadata = getattr(b, "metadata", None) or {}
    return Backup(
        id=b.id,
        name=getattr(b, "name", None),
        status=getattr(b, "status", None),
        size=getattr(b, "size", None),
        incremental=bool(getattr(b, "is_incremental", False)),
        created_at=parse_time(getattr(b, "created_at", None)),
        volume_id=getattr(b, "volume_id", None),
        metadata=metadata,
        server_id=metadata.get(rules.INSTANCE_KEY))


def cinder_client(request):
    return cinder.cinderclient(request, CINDER_MICROVERSION)


def backup_fetcher(request, search_opts):
    """``fetch(marker, limit, sort_dir)`` over Cinder's backup detail."""
    client = cinder_client(request)

    def fetch(marker, limit, sort_dir):
        found = client.backups.list(
            detailed=True, search_opts=dict(search_opts), marker=marker,
            limit=limit + 1, sort="created_at:%s" % sort_dir)
        rows = [_row(b) for b in found]
        return rows[:limit], len(rows) > limit
    return fetch


def volumes(request):
    """The project's volumes: id -> (name, id of the server it is attached
    to or None)."""
    found = {}
    for v in cinder_client(request).volumes.list(detailed=True):
        attached = [a.get("server_id") for a in (v.attachments or [])]
        found[v.id] = (v.name or v.id, attached[0] if attached else None)
    return found


def server_names(request):
    """The project's servers: id -> name."""
    servers, _more = nova.server_list(request, detailed=False)
    return {s.id: s.name for s in servers}


def api_url():
    return getattr(settings, "STAFFELN_API_URL", None)


def recorded_ids(request):
    """The ids of the project's backups staffeln-api lists (the backups
    Staffeln recorded), all pages of them.

    Raises StaffelnApiError when it cannot be asked or answers badly.
    """
    base = api_url()
    if not base:
        raise StaffelnApiError(
            "STAFFELN_API_URL is not set in Horizon's local_settings")
    timeout = getattr(settings, "STAFFELN_API_TIMEOUT", 10)
    url = base.rstrip("/") + "/v1/backups"
    ids = set()
    marker = None
    while True:
        params = {"marker": marker} if marker else {}
        try:
            resp = requests.get(
                url, params=params, timeout=timeout,
                headers={"X-Auth-Token": request.user.token.id,
                         "Accept": "application/json"})
        except requests.RequestException as e:
            raise StaffelnApiError("staffeln-api at %s: %s" % (base, e))
        if resp.status_code != 200:
            raise StaffelnApiError("staffeln-api answered %s: %s" % (
                resp.status_code, resp.text[:200]))
        try:
            body = resp.json()
            page = [b["id"] for b in body["backups"]]
        except (ValueError, KeyError, TypeError) as e:
            raise StaffelnApiError("staffeln-api's listing: %s" % e)
        ids.update(page)
        more = any(link.get("rel") == "next"
                   for link in body.get("backups_links") or [])
        if not more or not page:
            return ids
        marker = page[-1]


def delete_backup(request, backup_id):
    return cinder_client(request).backups.delete(backup_id)

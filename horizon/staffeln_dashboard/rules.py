"""The panel's decisions, as pure functions over plain data (no Django, no
HTTP): which backups Staffeln made, what a filter asks for, and how a page is
cut out of Cinder's marker/limit listing.

The automated mark is Staffeln's: the conductor writes the backup metadata
``__automated_backup = True`` on every backup it makes, and staffeln-api (the
guard Cinder asks before ``backup:delete``) refuses a tenant the deletion of
a backup whose metadata reads true there, or that Staffeln's database
records. A value reads true the way OpenStack reads a boolean string
(``oslo_utils.strutils.bool_from_string``), as Staffeln's
``objects::metadata::parse_bool`` does.
"""

import dataclasses
import datetime

AUTOMATED_KEY = "__automated_backup"
INSTANCE_KEY = "__staffeln_instance_id"

_TRUE = {"1", "t", "true", "on", "y", "yes"}


def is_true(value):
    """Whether a metadata value reads true (anything else does not)."""
    return isinstance(value, str) and value.strip().lower() in _TRUE


def is_marked_automated(metadata):
    """Whether backup metadata carries Staffeln's mark."""
    return is_true((metadata or {}).get(AUTOMATED_KEY))


def made_by_staffeln(backup_id, metadata, recorded_ids):
    """The guard's reading for a tenant: marked, or recorded by Staffeln.

    ``recorded_ids`` is the set staffeln-api lists for the project, or
    ``None`` when it could not be asked: then every backup counts as
    Staffeln's (fail closed, as the guard does), so Delete is not offered.
    """
    if is_marked_automated(metadata):
        return True
    if recorded_ids is None:
        return True
    return backup_id in recorded_ids


def deletable(row):
    """Delete is offered for the tenant's own backups in a final state."""
    return (not row.automated) and row.status in ("available", "error")


class FilterError(ValueError):
    """A filter value the panel cannot use; the message names it."""


# The server-side filter's fields: (field, label). "cinder" fields go to
# Cinder's query as they are (a non-admin may filter backups by name, status
# and volume_id); the others are applied while walking Cinder's pages.
FIELDS = (
    ("name", "Name ="),
    ("server", "Server ="),
    ("volume", "Volume ="),
    ("status", "Status ="),
    ("made_by", "Made by (staffeln/manual) ="),
    ("created", "Created (YYYY-MM-DD..YYYY-MM-DD) ="),
)
STATUSES = ("available", "creating", "deleting", "error", "restoring",
            "error_deleting")


@dataclasses.dataclass(frozen=True)
class Query:
    """What the listing asks Cinder, and what it checks on each backup."""
    cinder: dict
    server: str = None
    automated: bool = None
    since: datetime.datetime = None
    until: datetime.datetime = None

    def keeps(self, row):
        if self.automated is not None and row.automated != self.automated:
            return False
        if self.server is not None and self.server not in (
                row.server_id, row.server_name):
            return False
        if self.since is not None and row.created_at < self.since:
            return False
        if self.until is not None and row.created_at >= self.until:
            return False
        return True

    def past(self, row, sort_dir):
        """Whether the walk has left the date range for good (Cinder lists
        by ``created_at``, so nothing further can match)."""
        if sort_dir == "desc":
            return self.since is not None and row.created_at < self.since
        return self.until is not None and row.created_at >= self.until


def parse_day(text, what):
    try:
        return datetime.datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise FilterError(
            "%s %r is not a date: write YYYY-MM-DD" % (what, text.strip()))


def parse_filter(field, value, volume_ids_by_name=None):
    """The query for one filter field and value (Horizon's server filter
    sets one at a time). ``volume_ids_by_name`` resolves a volume name."""
    value = (value or "").strip()
    if not field or not value:
        return Query(cinder={})
    if field == "name":
        return Query(cinder={"name": value})
    if field == "status":
        status = value.lower()
        if status not in STATUSES:
            raise FilterError("status %r is not one of %s"
                              % (value, ", ".join(STATUSES)))
        return Query(cinder={"status": status})
    if field == "volume":
        volume_id = (volume_ids_by_name or {}).get(value, value)
        return Query(cinder={"volume_id": volume_id})
    if field == "server":
        return Query(cinder={}, server=value)
    if field == "made_by":
        word = value.lower()
        if word in ("staffeln", "automated", "auto"):
            return Query(cinder={}, automated=True)
        if word in ("manual", "user", "tenant"):
            return Query(cinder={}, automated=False)
        raise FilterError("made by %r: write staffeln or manual" % value)
    if field == "created":
        since, sep, until = value.partition("..")
        start = parse_day(since, "from") if since.strip() else None
        end = None
        if sep and until.strip():
            # A day range includes its last day.
            end = parse_day(until, "to") + datetime.timedelta(days=1)
        elif not sep:
            end = start + datetime.timedelta(days=1)
        if start and end and end <= start:
            raise FilterError("the range %r ends before it starts" % value)
        return Query(cinder={}, since=start, until=end)
    raise FilterError("unknown filter %r" % field)


def walk(fetch, query, marker, sort_dir, page_size, batch):
    """One page of backups that ``query`` keeps, and whether more remain.

    ``fetch(marker, limit, sort_dir)`` returns one page of Cinder's listing
    (rows in ``sort_dir`` order by creation, after ``marker``) and whether
    Cinder has more. Pages are read until ``page_size`` rows are kept, one
    more shows there is a next page, or the date range is left behind.
    Rows come back newest first whatever the direction.
    """
    kept = []
    more = False
    cursor = marker
    while True:
        rows, cinder_more = fetch(cursor, batch, sort_dir)
        stop = False
        for row in rows:
            if query.past(row, sort_dir):
                stop = True
                break
            if query.keeps(row):
                if len(kept) == page_size:
                    more = True
                    stop = True
                    break
                kept.append(row)
        if stop or not cinder_more or not rows:
            break
        cursor = rows[-1].id
    return kept, more

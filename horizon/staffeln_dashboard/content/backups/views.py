"""The Backups page: one page of the project's backups, read from Cinder
with the user's token (marker/limit, newest or oldest first), filtered on
the server, each marked by who made it."""

from django.utils.translation import gettext_lazy as _

from horizon import exceptions
from horizon import messages
from horizon import tables
from horizon.utils import functions as utils

from staffeln_dashboard import api
from staffeln_dashboard.content.backups import tables as backup_tables
from staffeln_dashboard import rules

# How many backups one Cinder call asks for while walking pages that a
# filter thins out (Cinder caps a page at osapi_max_limit, 1000 by default).
WALK_BATCH = 200


class IndexView(tables.PagedTableMixin, tables.DataTableView):
    table_class = backup_tables.BackupsTable
    template_name = "project/staffeln_backups/index.html"
    page_title = _("Backups")

    def _order(self):
        """Newest first ("desc") unless the user chose oldest first."""
        session = self.request.session
        chosen = self.request.GET.get("order")
        if chosen in ("asc", "desc"):
            session[backup_tables.SESSION_ORDER] = chosen
        return "asc" if session.get(backup_tables.SESSION_ORDER) == "asc" \
            else "desc"

    def get_data(self):
        order = self._order()
        marker, direction = self._get_marker()
        # PagedTableMixin says "asc" for a previous page, "desc" otherwise;
        # with the oldest first, both are the other way round.
        backward = direction == "asc"
        fetch_dir = order if not backward else (
            "asc" if order == "desc" else "desc")

        try:
            volumes = api.volumes(self.request)
        except Exception:
            volumes = {}
            exceptions.handle(self.request,
                              _("Unable to retrieve the project's volumes."))
        try:
            servers = api.server_names(self.request)
        except Exception:
            servers = {}
            exceptions.handle(self.request,
                              _("Unable to retrieve the project's servers."))

        field = self.table.get_filter_field()
        value = self.table.get_filter_string()
        try:
            by_name = {name: vid for vid, (name, _s) in volumes.items()}
            query = rules.parse_filter(field, value, by_name)
        except rules.FilterError as e:
            messages.error(self.request, _("Invalid filter: %s") % e)
            return []

        try:
            recorded = api.recorded_ids(self.request)
        except api.StaffelnApiError as e:
            # Fail closed, as the guard does: no Delete while Staffeln
            # cannot say which backups are its own.
            recorded = None
            messages.warning(self.request, _(
                "Unable to ask Staffeln which backups it made (%s); Delete "
                "is not offered until it answers.") % e)

        def annotate(row):
            row.automated = rules.made_by_staffeln(
                row.id, row.metadata, recorded)
            name, attached = volumes.get(row.volume_id, (None, None))
            row.volume_name = name
            if row.server_id is None:
                row.server_id = attached
            row.server_name = servers.get(row.server_id)
            return row

        fetch_cinder = None
        try:
            fetch_cinder = api.backup_fetcher(self.request, query.cinder)

            def fetch(cursor, limit, sort_dir):
                rows, more = fetch_cinder(cursor, limit, sort_dir)
                return [annotate(r) for r in rows], more

            page_size = utils.get_page_size(self.request)
            # Without a filter applied while walking, one call of a page.
            batch = page_size + 1 if query == rules.Query(
                cinder=query.cinder) else WALK_BATCH
            rows, more = rules.walk(fetch, query, marker, fetch_dir,
                                    page_size, batch)
        except Exception:
            exceptions.handle(self.request,
                              _("Unable to retrieve volume backups."))
            return []

        if backward:
            rows.reverse()
            self._has_prev_data = more
            self._has_more_data = True
        else:
            self._has_prev_data = marker is not None
            self._has_more_data = more
        return rows

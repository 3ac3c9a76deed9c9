"""The Backups table: columns, the server-side filter, Delete, the order."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from horizon import tables

from staffeln_dashboard import api
from staffeln_dashboard import rules


class BackupsFilterAction(tables.FilterAction):
    # Applied by the view (Cinder's query, or while walking its pages), so
    # that it covers every page, not the one shown.
    filter_type = "server"
    filter_choices = tuple((field, _(label), True)
                           for field, label in rules.FIELDS)


class ToggleOrder(tables.LinkAction):
    """Newest first (Cinder's default) or oldest first, kept in the
    session like the filter."""
    name = "order"
    classes = ("btn-default",)
    icon = "sort"
    verbose_name = _("Oldest first")

    def allowed(self, request, datum=None):
        oldest = request.session.get(SESSION_ORDER) == "asc"
        self.verbose_name = _("Newest first") if oldest else _("Oldest first")
        return True

    def get_link_url(self, datum=None):
        oldest = self.table.request.session.get(SESSION_ORDER) == "asc"
        return "?order=%s" % ("desc" if oldest else "asc")


SESSION_ORDER = "staffeln_backups_order"


class DeleteBackup(tables.DeleteAction):
    help_text = _("Deleted volume backups are not recoverable.")
    policy_rules = (("volume", "backup:delete"),)

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Backup", "Delete Backups", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Scheduled deletion of Backup",
                             "Scheduled deletion of Backups", count)

    def allowed(self, request, backup=None):
        # Not offered for Staffeln's backups: Cinder's backup:delete asks
        # staffeln-api, which refuses tenants exactly those.
        if backup is not None:
            return rules.deletable(backup)
        return True

    def delete(self, request, obj_id):
        api.delete_backup(request, obj_id)


def server_display(backup):
    return backup.server_name or backup.server_id or "-"


def volume_display(backup):
    return backup.volume_name or backup.volume_id or "-"


def kind_display(backup):
    return _("Incremental") if backup.incremental else _("Full")


def made_by_display(backup):
    return _("Staffeln") if backup.automated else _("Manual")


def size_display(backup):
    return _("%s GiB") % backup.size if backup.size is not None else "-"


def created_display(backup):
    return backup.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")


class BackupsTable(tables.DataTable):
    name = tables.Column("name", verbose_name=_("Name"))
    server = tables.Column(server_display, verbose_name=_("Server"))
    volume = tables.Column(volume_display, verbose_name=_("Volume"))
    status = tables.Column("status", verbose_name=_("Status"))
    size = tables.Column(size_display, verbose_name=_("Size"))
    kind = tables.Column(kind_display, verbose_name=_("Full/Incremental"))
    created_at = tables.Column(created_display, verbose_name=_("Created At"))
    made_by = tables.Column(made_by_display, verbose_name=_("Made By"))

    def get_object_display(self, datum):
        return datum.name or datum.id

    class Meta(object):
        name = "staffeln_backups"
        verbose_name = _("Backups")
        pagination_param = "backup_marker"
        prev_pagination_param = "prev_backup_marker"
        table_actions = (BackupsFilterAction, ToggleOrder, DeleteBackup)
        row_actions = (DeleteBackup,)

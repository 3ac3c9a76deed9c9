"""Horizon customization module (``HORIZON_CONFIG["customization_module"]``):
the stock Project > Volumes > Backups panel offers Delete only where
Staffeln's guard will let Cinder delete.

Why not Horizon's policy check? Horizon evaluates ``backup:delete`` with
oslo.policy from its copy of Cinder's policy file, and oslo.policy does run
``http:`` checks, so the file could carry the same rule Cinder enforces. But
the stock Delete action passes no policy target: the rule's
``backup_id=%(id)s`` has nothing to fill (oslo.policy raises KeyError, so the
table fails instead of hiding the button), the guard would see no metadata,
and every row of every page would cost one HTTP call. The action is
overridden instead, with the decision the plugin's own panel makes: not for
a backup Staffeln made (marked, or recorded by staffeln-api), and not while
staffeln-api cannot say (fail closed, as the guard does).

The stock panel lists backups at Cinder's base microversion, without their
metadata, so there the decision rests on staffeln-api's record; a marked
backup Staffeln does not record (another deployment's) still shows Delete,
and Cinder refuses it with Horizon's usual error message.
"""

from openstack_dashboard.dashboards.project.backups import tables as stock

from staffeln_dashboard import api
from staffeln_dashboard import rules

_stock_allowed = stock.DeleteBackup.allowed


def recorded_for(request):
    """staffeln-api's record of the project's backups, asked once per
    request; ``None`` when it cannot be asked."""
    if not hasattr(request, "_staffeln_recorded"):
        try:
            request._staffeln_recorded = api.recorded_ids(request)
        except api.StaffelnApiError:
            request._staffeln_recorded = None
    return request._staffeln_recorded


def allowed(self, request, backup=None):
    if not _stock_allowed(self, request, backup):
        return False
    if backup is None:
        return True
    resource = getattr(backup, "_apiresource", backup)
    metadata = getattr(resource, "metadata", None) or {}
    return not rules.made_by_staffeln(backup.id, metadata,
                                      recorded_for(request))


stock.DeleteBackup.allowed = allowed

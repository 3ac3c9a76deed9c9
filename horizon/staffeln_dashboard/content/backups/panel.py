from django.utils.translation import gettext_lazy as _

import horizon


class Backups(horizon.Panel):
    name = _("Backups (Staffeln)")
    slug = "staffeln_backups"
    # As Horizon's own Volume Backups panel: shown where Cinder is in the
    # catalog, under whichever service type, and backups may be listed.
    permissions = (
        ("openstack.services.block-storage",
         "openstack.services.block-store",
         "openstack.services.volume",
         "openstack.services.volumev3"),
    )
    policy_rules = (("volume", "backup:get_all"),)

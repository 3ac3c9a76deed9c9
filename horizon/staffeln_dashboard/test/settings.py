"""Django settings for the plugin's tests: Horizon's own test settings with
the plugin enabled, as a deployment enables it (the ``enabled`` file)."""

from openstack_dashboard.test.settings import *  # noqa: F401,F403
from openstack_dashboard.test.settings import HORIZON_CONFIG
from openstack_dashboard.test.settings import INSTALLED_APPS
from openstack_dashboard.utils import settings as settings_utils

from openstack_dashboard import enabled as stock_enabled
from staffeln_dashboard import enabled as staffeln_enabled

# Horizon's settings have added the stock panels' apps already; they are
# added again with the plugin's, so each is kept once.
INSTALLED_APPS = list(INSTALLED_APPS)
settings_utils.update_dashboards(
    [stock_enabled, staffeln_enabled], HORIZON_CONFIG, INSTALLED_APPS)
INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))

STAFFELN_API_URL = "http://staffeln-api.test:8808"

# The stock Volume Backups panel's Delete, as deployments enable it.
HORIZON_CONFIG["customization_module"] = "staffeln_dashboard.overrides"

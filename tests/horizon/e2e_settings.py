"""Horizon's own settings for the end-to-end run (tests/horizon/e2e.py): the
stock openstack_dashboard settings, the plugin enabled as a deployment
enables it, Keystone and staffeln-api from the environment."""

import os

from openstack_dashboard.settings import *  # noqa: F401,F403
from openstack_dashboard.settings import HORIZON_CONFIG
from openstack_dashboard.settings import INSTALLED_APPS
from openstack_dashboard.utils import settings as settings_utils

from openstack_dashboard import enabled as stock_enabled
from staffeln_dashboard import enabled as staffeln_enabled

DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "staffeln-e2e-only"
OPENSTACK_KEYSTONE_URL = os.environ["STAFFELN_E2E_KEYSTONE_URL"]
OPENSTACK_ENDPOINT_TYPE = "publicURL"
STAFFELN_API_URL = os.environ["STAFFELN_E2E_API_URL"]
# Generous: the test machine is shared and loaded (the run is about what the
# panel shows, not how fast staffeln-api answers).
STAFFELN_API_TIMEOUT = 60
API_RESULT_PAGE_SIZE = int(os.environ.get("STAFFELN_E2E_PAGE_SIZE", "2"))
# Horizon's stock Volume Backups panel shows only with this (devstack sets
# it when cinder-backup runs).
OPENSTACK_CINDER_FEATURES = {"enable_backup": True}
COMPRESS_ENABLED = False
COMPRESS_OFFLINE = False
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

INSTALLED_APPS = list(INSTALLED_APPS)
settings_utils.update_dashboards(
    [stock_enabled, staffeln_enabled], HORIZON_CONFIG, INSTALLED_APPS)
INSTALLED_APPS = list(dict.fromkeys(INSTALLED_APPS))
HORIZON_CONFIG["customization_module"] = "staffeln_dashboard.overrides"

#!/bin/bash
# kolla_extend_start for Staffeln, sourced by kolla_start after
# kolla_set_configs. With KOLLA_BOOTSTRAP set (even empty) it creates or
# upgrades the database schema and exits, like kolla's other images.
# staffeln_run comes from kolla_start.

STAFFELN_CONFIG_FILE=${STAFFELN_CONFIG_FILE:-/etc/staffeln/staffeln.conf}

if [[ "${!KOLLA_BOOTSTRAP[*]}" ]]; then
    staffeln_run staffeln-manage --config-file "$STAFFELN_CONFIG_FILE" db upgrade
    exit 0
fi

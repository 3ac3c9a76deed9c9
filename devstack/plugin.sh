#!/bin/bash
# shellcheck shell=bash
#
# devstack/plugin.sh: devstack calls it as `source plugin.sh <mode> [phase]`.
# The functions live in devstack/lib/staffeln.

# shellcheck source=devstack/lib/staffeln
source "$(dirname "${BASH_SOURCE[0]}")/lib/staffeln"

if is_service_enabled staffeln; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing Staffeln"
        install_staffeln
        if is_service_enabled horizon; then
            install_staffeln_dashboard
        fi
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring Staffeln"
        configure_staffeln
        create_staffeln_accounts
        if is_service_enabled c-api; then
            # Cinder starts after this phase; oslo.policy also re-reads
            # the file when it changes.
            configure_cinder_policy_for_staffeln
            configure_cinder_notifications_for_staffeln
        fi
        if is_service_enabled horizon; then
            configure_staffeln_dashboard
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting Staffeln"
        init_staffeln
        start_staffeln
        configure_ceph_compression_for_staffeln
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_staffeln
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_staffeln
        if is_service_enabled horizon; then
            cleanup_staffeln_dashboard
        fi
    fi
fi

#!/bin/bash
# Runs the devstack plugin without devstack: devstack's functions are stubs
# that record their calls, the INI helpers are small implementations of
# devstack's documented iniset/iniget behaviour, and the Staffeln binaries
# are fakes that record how they were called. Then it asserts the calls,
# their order and idempotence; the files it leaves behind are checked again
# by tests/it/deploy.rs with oslo.config and oslo.policy.
#
# usage: devstack-harness.sh WORKDIR SCENARIO
#   SCENARIO: swift (default driver, cargo build) or ceph (prebuilt
#   binaries, Ceph backup driver, inherited domain role, Horizon).
# Exit status 0 when every assertion holds; the failures are printed.
set -eE -o pipefail
trap 'echo "FAIL: harness stopped at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:?usage: devstack-harness.sh WORKDIR SCENARIO}
SCENARIO=${2:?usage: devstack-harness.sh WORKDIR SCENARIO}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
CALLS=$WORK/calls
: > "$CALLS"
FAIL=0

# --- what devstack provides --------------------------------------------------
DEST=$WORK/opt/stack
DATA_DIR=$DEST/data
STACK_USER=$(id -un)
SERVICE_HOST=192.0.2.10
SERVICE_LISTEN_ADDRESS=0.0.0.0
SERVICE_PASSWORD=secretservice
SERVICE_DOMAIN_NAME=Default
SERVICE_PROJECT_NAME=service
SERVICE_TIMEOUT=60
SERVICE_GRACEFUL_SHUTDOWN_TIMEOUT=5
ENABLE_DEBUG_LOG_LEVEL=True
REGION_NAME=RegionOne
KEYSTONE_SERVICE_URI=http://192.0.2.10/identity
DATABASE_BACKENDS=mysql
ENABLED_SERVICES=key,mysql,rabbit,c-api,c-vol,c-sch
STAFFELN_CONF_DIR=$WORK/etc/staffeln
STAFFELN_BIN_DIR=$WORK/usr/local/bin
CINDER_POLICY_FILE=$WORK/etc/cinder/policy.yaml
CINDER_CONF=$WORK/etc/cinder/cinder.conf
mkdir -p "$DEST" "$STAFFELN_BIN_DIR"

rec() { echo "$*" >> "$CALLS"; }

# Stubs of devstack's functions.
define_plugin() { rec define_plugin "$@"; }
plugin_requires() { rec plugin_requires "$@"; }
echo_summary() { :; }
die() { echo "die: $*" >&2; exit 1; }
is_ubuntu() { return 0; }
install_package() { rec install_package "$@"; }
sudo() { "$@"; }
enable_service() {
    local s
    for s in "$@"; do
        [[ ,$ENABLED_SERVICES, == *,$s,* ]] || ENABLED_SERVICES+=",$s"
    done
}
# Like devstack: true if any argument is enabled; is_<name>_enabled decides
# for a bare name when it exists.
is_service_enabled() {
    local s
    for s in "$@"; do
        if declare -F "is_${s//-/_}_enabled" >/dev/null && "is_${s//-/_}_enabled"; then
            return 0
        fi
        [[ ,$ENABLED_SERVICES, == *,$s,* ]] && return 0
    done
    return 1
}
recreate_database() { rec recreate_database "$@"; }
database_connection_url() {
    echo "mysql+pymysql://root:dbpass@127.0.0.1/$1?charset=utf8&plugin=dbcounter"
}
iniset_rpc_backend() {
    rec iniset_rpc_backend "$@"
    iniset "$2" "${3:-DEFAULT}" transport_url "rabbit://stackrabbit:rabbitpass@192.0.2.10:5672/"
}
create_service_user() { rec create_service_user "$@"; }
get_or_add_user_project_role() { rec get_or_add_user_project_role "$@"; }
openstack() { rec openstack "$@"; }
run_process() { rec run_process "$@"; }
pip_install() { rec pip_install "$@"; }
restart_apache_server() { rec restart_apache_server; }
wait_for_service() { rec wait_for_service "$@"; }
stop_process() { rec stop_process "$@"; }
# shellcheck disable=SC2032 # the sudo stub runs it as a function
rabbitmqctl() { rec rabbitmqctl "$@"; }

# iniset FILE SECTION KEY VALUE (devstack's documented behaviour: creates the
# file and the section, replaces an existing key, puts a new key directly
# under the section header).
iniset() {
    local file=$1 section=$2 key=$3 value=$4 tmp
    [[ -f $file ]] || touch "$file"
    tmp=$(mktemp)
    if ! grep -q "^\[$section\]" "$file"; then
        printf '\n[%s]\n%s = %s\n' "$section" "$key" "$value" >> "$file"
    elif awk -v s="[$section]" -v k="$key" '
            $0 == s {in_s = 1; next}
            /^\[/ {in_s = 0}
            in_s && $0 ~ "^" k "[ \t]*=" {found = 1}
            END {exit !found}' "$file"; then
        awk -v s="[$section]" -v k="$key" -v v="$value" '
            $0 == s {in_s = 1; print; next}
            /^\[/ {in_s = 0}
            in_s && $0 ~ "^" k "[ \t]*=" {print k " = " v; next}
            {print}' "$file" > "$tmp" && cat "$tmp" > "$file"
    else
        awk -v s="[$section]" -v k="$key" -v v="$value" '
            {print}
            $0 == s {print k " = " v}' "$file" > "$tmp" && cat "$tmp" > "$file"
    fi
    rm -f "$tmp"
}
# iniget FILE SECTION KEY
iniget() {
    awk -v s="[$2]" -v k="$3" '
        $0 == s {in_s = 1; next}
        /^\[/ {in_s = 0}
        in_s && $0 ~ "^" k "[ \t]*=" {sub("^[^=]*=[ \t]*", ""); print; exit}' "$1"
}

# Fake binaries that record their arguments.
fake_bin() { # dir name
    mkdir -p "$1"
    printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$2" "$CALLS" > "$1/$2"
    chmod 755 "$1/$2"
}

# --- assertions -----------------------------------------------------------
fail() { echo "FAIL: $*"; FAIL=1; }
assert_called() { grep -qxF -- "$1" "$CALLS" || fail "not called: $1"; }
assert_not_called() { ! grep -qF -- "$1" "$CALLS" || fail "called: $1"; }
assert_order() { # first second: first call of $1 precedes first call of $2
    local a b
    a=$(grep -nxF -- "$1" "$CALLS" | head -1 | cut -d: -f1 || true)
    b=$(grep -nxF -- "$2" "$CALLS" | head -1 | cut -d: -f1 || true)
    [[ -n $a && -n $b && $a -lt $b ]] || fail "expected '$1' (line ${a:-none}) before '$2' (line ${b:-none})"
}
assert_ini() { # section key expected
    local got
    got=$(iniget "$STAFFELN_CONF" "$1" "$2")
    [[ "$got" == "$3" ]] || fail "[$1] $2 = '$got', expected '$3'"
}

# --- scenario -------------------------------------------------------------
case "$SCENARIO" in
    swift)
        CINDER_BACKUP_DRIVER=swift
        STAFFELN_DIR=$DEST/staffeln
        fakecargo=$WORK/cargo-bin
        mkdir -p "$fakecargo"
        # cargo writes the four binaries into target/release.
        cat > "$fakecargo/cargo" <<CARGO
#!/bin/sh
echo "cargo \$* (in \$PWD)" >> "$CALLS"
mkdir -p target/release
for b in staffeln-api staffeln-conductor staffeln-manage staffeln; do
    printf '#!/bin/sh\necho "%s \$*" >> "%s"\n' "\$b" "$CALLS" > target/release/\$b
    chmod 755 target/release/\$b
done
CARGO
        chmod 755 "$fakecargo/cargo"
        mkdir -p "$STAFFELN_DIR"
        PATH=$fakecargo:$PATH
        ;;
    ceph)
        CINDER_BACKUP_DRIVER=ceph
        CINDER_BAK_CEPH_POOL=volbackups
        STAFFELN_PREBUILT_DIR=$WORK/prebuilt
        STAFFELN_BACKUP_PROJECTS=demo,alt_demo
        STAFFELN_INHERITED_ROLE_DOMAINS=Default
        STAFFELN_TRUSTED_USER_IDS=0123456789abcdef0123456789abcdef
        for b in staffeln-api staffeln-conductor staffeln-manage staffeln; do
            fake_bin "$STAFFELN_PREBUILT_DIR" "$b"
        done
        # With Horizon: the panel from this repository, Horizon's manage.py
        # run by a recording python.
        ENABLED_SERVICES+=,horizon
        STAFFELN_DASHBOARD_DIR=$REPO/horizon
        mkdir -p "$DEST/horizon"
        fake_bin "$WORK/usr/bin" python
        PYTHON=$WORK/usr/bin/python
        ;;
    *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

# The ceph scenario's Cinder has a notification driver already (Ceilometer's
# plugin set it, say): it is kept.
mkdir -p "$(dirname "$CINDER_CONF")"
if [[ $SCENARIO == ceph ]]; then
    printf '[oslo_messaging_notifications]\ndriver = messagingv2,log\n' > "$CINDER_CONF"
    ENABLED_SERVICES+=,ceilometer-anotification
else
    : > "$CINDER_CONF"
fi

# A policy file with another rule and an older backup:delete override.
mkdir -p "$(dirname "$CINDER_POLICY_FILE")"
printf '"volume:delete": "rule:admin_or_owner"\nbackup:delete: "rule:admin_api"\n' > "$CINDER_POLICY_FILE"

# shellcheck source=devstack/settings
source "$REPO/devstack/settings"
[[ ,$ENABLED_SERVICES, == *,staffeln-api,* && ,$ENABLED_SERVICES, == *,c-bak,* ]] \
    || fail "settings did not enable staffeln-api and c-bak: $ENABLED_SERVICES"
assert_called "define_plugin staffeln"

for phase in install post-config extra; do
    # shellcheck source=devstack/plugin.sh
    source "$REPO/devstack/plugin.sh" stack "$phase"
done
# post-config again: the policy must still hold exactly one backup:delete.
# shellcheck source=devstack/plugin.sh
source "$REPO/devstack/plugin.sh" stack post-config

CONF=$STAFFELN_CONF
[[ $CONF == "$STAFFELN_CONF_DIR/staffeln.conf" ]] || fail "STAFFELN_CONF=$CONF"
BIN=$STAFFELN_BIN_DIR
for b in staffeln-api staffeln-conductor staffeln-manage staffeln; do
    [[ -x $BIN/$b ]] || fail "$BIN/$b not installed"
done

# install
if [[ $SCENARIO == swift ]]; then
    assert_called "cargo build --release --locked -p staffeln --bins (in $DEST/staffeln)"
else
    assert_not_called "cargo "
fi
# Nothing to install: the build links no C client library.
assert_not_called "install_package"

# configuration
assert_ini DEFAULT debug True
assert_ini DEFAULT graceful_shutdown_timeout 5
assert_ini DEFAULT state_path "$DATA_DIR/staffeln"
assert_ini DEFAULT transport_url "rabbit://stackrabbit:rabbitpass@192.0.2.10:5672/"
assert_ini database connection "mysql+pymysql://root:dbpass@127.0.0.1/staffeln?charset=utf8&plugin=dbcounter"
assert_ini api host 0.0.0.0
assert_ini api port 8808
assert_ini openstack auth_url http://192.0.2.10/identity
assert_ini openstack username staffeln
assert_ini openstack password secretservice
assert_ini openstack project_name service
assert_ini openstack user_domain_name Default
assert_ini openstack region_name RegionOne
[[ -d $DATA_DIR/staffeln ]] || fail "state_path not created"

# accounts
assert_called "create_service_user staffeln admin"
assert_called "get_or_add_user_project_role member staffeln demo Default Default"

# Cinder policy: exactly one backup:delete line, pointing at staffeln-api.
want='"backup:delete": "rule:admin_api or (project_id:%(project_id)s and role:member and http://192.0.2.10:8808/v1/backup?backup_id=%(id)s)"'
n=$(grep -c 'backup:delete' "$CINDER_POLICY_FILE" || true)
[[ $n == 1 ]] || fail "policy has $n backup:delete lines"
grep -qxF -- "$want" "$CINDER_POLICY_FILE" || fail "policy line missing: $want"
grep -qxF -- '"volume:delete": "rule:admin_or_owner"' "$CINDER_POLICY_FILE" || fail "other policy rules lost"

# Completion by Cinder's events: Cinder publishes (its driver kept when
# set), Staffeln reads from its own queue on Cinder's exchange; without
# Ceilometer, Cinder's unread notifications.info expires.
assert_ini cinder_notifications enabled True
assert_ini cinder_notifications exchange openstack
assert_ini cinder_notifications topic notifications
[[ -z $(iniget "$CONF" cinder_notifications queue) ]] || fail "[cinder_notifications] queue is not left to its default"
if [[ $SCENARIO == ceph ]]; then
    [[ $(iniget "$CINDER_CONF" oslo_messaging_notifications driver) == "messagingv2,log" ]] \
        || fail "Cinder's notification driver was changed"
    assert_not_called "rabbitmqctl"
else
    [[ $(iniget "$CINDER_CONF" oslo_messaging_notifications driver) == messagingv2 ]] \
        || fail "Cinder does not publish its notifications"
    assert_called "rabbitmqctl set_policy --apply-to queues --priority 0 staffeln-unread-notifications ^notifications\\. {\"message-ttl\": 3600000}"
fi

# init and start, in order: DB, schema, API, health, conductor.
api="run_process staffeln-api $BIN/staffeln-api --config-file $CONF"
conductor="run_process staffeln-conductor /usr/bin/env $STAFFELN_CONDUCTOR_ENV $BIN/staffeln-conductor --config-file $CONF"
[[ $STAFFELN_CONDUCTOR_ENV == *MALLOC_ARENA_MAX=1* ]] || fail "STAFFELN_CONDUCTOR_ENV='$STAFFELN_CONDUCTOR_ENV'"
assert_called "recreate_database staffeln"
assert_called "staffeln-manage --config-file $CONF db upgrade"
assert_called "wait_for_service 60 http://192.0.2.10:8808/v1/health"
assert_order "recreate_database staffeln" "staffeln-manage --config-file $CONF db upgrade"
assert_order "staffeln-manage --config-file $CONF db upgrade" "$api"
assert_order "$api" "wait_for_service 60 http://192.0.2.10:8808/v1/health"
assert_order "wait_for_service 60 http://192.0.2.10:8808/v1/health" "$conductor"

# Ceph compression only with the Ceph backup driver.
if [[ $SCENARIO == ceph ]]; then
    assert_ini ceph_compression pool volbackups
    assert_ini ceph_compression mode aggressive
    assert_ini ceph_compression algorithm zstd
    assert_ini ceph_compression ceph_conf /etc/ceph/ceph.conf
    assert_called "staffeln-manage --config-file $CONF ceph-compression apply"
    assert_order "$conductor" "staffeln-manage --config-file $CONF ceph-compression apply"
    assert_called "get_or_add_user_project_role member staffeln alt_demo Default Default"
    assert_called "openstack role add --user staffeln --user-domain Default --domain Default --inherited member"
    assert_ini api trusted_user_ids 0123456789abcdef0123456789abcdef
else
    [[ -z $(iniget "$CONF" api trusted_user_ids) ]] || fail "[api] trusted_user_ids written without a value"
    [[ -z $(iniget "$CONF" ceph_compression mode) ]] || fail "[ceph_compression] written without Ceph"
    assert_not_called "ceph-compression"
    assert_not_called "openstack role add"
fi

# The Horizon panel only when Horizon is enabled.
HZ_LOCAL=$HORIZON_DIR/openstack_dashboard/local
if [[ $SCENARIO == ceph ]]; then
    assert_called "pip_install $REPO/horizon"
    [[ -f $HZ_LOCAL/enabled/$STAFFELN_DASHBOARD_ENABLED ]] || fail "the panel's enabled file is not installed"
    grep -qxF 'STAFFELN_API_URL = "http://192.0.2.10:8808"' "$HZ_LOCAL/local_settings.d/$STAFFELN_DASHBOARD_SETTINGS" \
        || fail "Horizon does not know staffeln-api's URL"
    grep -qxF 'HORIZON_CONFIG["customization_module"] = "staffeln_dashboard.overrides"' \
        "$HZ_LOCAL/local_settings.d/$STAFFELN_DASHBOARD_SETTINGS" || fail "the stock Delete is not overridden"
    assert_called "python manage.py collectstatic --noinput"
    assert_order "python manage.py collectstatic --noinput" "python manage.py compress --force"
    assert_order "python manage.py compress --force" "restart_apache_server"
else
    assert_not_called "pip_install"
    assert_not_called "restart_apache_server"
fi

# unstack stops both services; clean removes what the plugin wrote.
# shellcheck source=devstack/plugin.sh
source "$REPO/devstack/plugin.sh" unstack
assert_called "stop_process staffeln-api"
assert_called "stop_process staffeln-conductor"
cp "$CONF" "$WORK/staffeln.conf"
cp "$CINDER_POLICY_FILE" "$WORK/policy.yaml"
# shellcheck source=devstack/plugin.sh
source "$REPO/devstack/plugin.sh" clean
[[ ! -e $STAFFELN_CONF_DIR ]] || fail "clean left $STAFFELN_CONF_DIR"
[[ ! -e $BIN/staffeln-api ]] || fail "clean left $BIN/staffeln-api"
! grep -q 'backup:delete' "$CINDER_POLICY_FILE" || fail "clean left the backup:delete rule"
grep -qxF -- '"volume:delete": "rule:admin_or_owner"' "$CINDER_POLICY_FILE" || fail "clean removed other rules"
[[ ! -e $HZ_LOCAL/enabled/$STAFFELN_DASHBOARD_ENABLED ]] || fail "clean left the panel enabled"

# A disabled plugin does nothing.
: > "$CALLS"
ENABLED_SERVICES=key,c-api
# shellcheck source=devstack/plugin.sh
source "$REPO/devstack/plugin.sh" stack extra
[[ ! -s $CALLS ]] || fail "plugin acted while disabled: $(cat "$CALLS")"

if [[ $FAIL != 0 ]]; then
    echo "devstack plugin harness ($SCENARIO): FAILED"
    exit 1
fi
echo "devstack plugin harness ($SCENARIO): ok"

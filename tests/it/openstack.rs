//! The OpenStack client against the in-process emulator (`staffeln_fakecloud`):
//! authentication, token caching and re-issue, per-project scoping, paging,
//! backups, quotas, retries and error surfacing. Retry behaviour is asserted
//! through the emulator's call counters, never through wall time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::TryStreamExt;
use staffeln::objects::{BackupId, BackupKind, BackupStatus, ProjectId, VolumeId, VolumeStatus};
use staffeln::openstack::{
    BackupFilter, BackupRequest, OpenStack, OpenStackError, SearchPaths, Secret, ServiceType, Settings,
};
use staffeln_fakecloud::{BackupOutcome, Credentials, FakeCloud, FakeOptions, Fault, FaultEffect, Scenario, Service};

const APP_CRED_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Gives the service user `staffeln` the admin role in every project, as an
/// operator does (directly or inherited from the domain) so that Staffeln
/// can get a token scoped to each project.
fn with_service_roles(mut scenario: Scenario) -> Scenario {
    let names: Vec<String> = scenario.projects.iter().map(|p| p.name.clone()).collect();
    if let Some(user) = scenario.users.iter_mut().find(|u| u.name == "staffeln") {
        for name in names {
            user.roles.insert(name, vec!["admin".to_owned()]);
        }
    }
    scenario
}

fn start(scenario: Scenario) -> FakeCloud {
    FakeCloud::start(with_service_roles(scenario), FakeOptions::default()).expect("the fake cloud starts")
}

fn small_cloud() -> FakeCloud {
    let mut scenario = Scenario::small();
    if let Some(cred) = scenario.application_credentials.first_mut() {
        cred.id = Some(APP_CRED_ID.to_owned());
    }
    start(scenario)
}

/// Password settings for emulator credentials; short waits so retries are quick.
fn settings(c: &Credentials) -> Settings {
    Settings {
        auth_url: Some(c.auth_url.clone()),
        username: Some(c.username.clone()),
        password: Some(Secret::new(c.password.clone())),
        project_name: Some(c.project_name.clone()),
        max_retry_interval: Duration::from_millis(20),
        retry_timeout: Duration::from_secs(30),
        ..Settings::default()
    }
}

async fn admin(cloud: &FakeCloud) -> OpenStack {
    OpenStack::connect(&settings(&cloud.admin())).await.expect("the service user authenticates")
}

fn pid(cloud: &FakeCloud, name: &str) -> ProjectId {
    ProjectId(cloud.control().project_id(name).expect("project exists"))
}

fn vid(cloud: &FakeCloud, name: &str) -> VolumeId {
    VolumeId(cloud.control().volume_id(name).expect("volume exists"))
}

const TOKENS: (&str, &str) = ("POST", "/identity/auth/tokens");

fn calls(cloud: &FakeCloud, (method, route): (&str, &str)) -> u64 {
    cloud.control().call_count(method, route)
}

#[tokio::test]
async fn password_auth_lists_projects_roles_and_users() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    assert_eq!(*os.project_id(), pid(&cloud, "admin"));

    let projects: Vec<_> = os.projects().try_collect().await.unwrap();
    let names: BTreeSet<&str> = projects.iter().map(|p| p.name.as_str()).collect();
    assert!(names.is_superset(&BTreeSet::from(["admin", "demo", "other"])), "{names:?}");

    let demo = pid(&cloud, "demo");
    let roles: Vec<_> = os.role_assignments(&demo).try_collect().await.unwrap();
    let alice = cloud.control().user_id("alice").unwrap();
    let alice_roles: Vec<_> = roles.iter().filter(|r| r.user_id.as_str() == alice).collect();
    assert!(!alice_roles.is_empty(), "{roles:?}");
    assert!(alice_roles.iter().all(|r| r.project_id == demo));
    assert!(alice_roles.iter().any(|r| r.role_name.as_deref() == Some("member")), "{alice_roles:?}");

    let user = os.user(&alice_roles[0].user_id).await.unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.email.as_deref(), Some("alice@example.org"));
    let bob = os.user(&cloud.control().user_id("bob").unwrap().into()).await.unwrap();
    assert_eq!(bob.email, None);
}

#[tokio::test]
async fn app_credentials_authenticate_and_stay_in_their_project() {
    let cloud = small_cloud();
    let s = Settings {
        auth_url: Some(cloud.auth_url()),
        application_credential_id: Some(APP_CRED_ID.to_owned()),
        application_credential_secret: Some("alice-app-secret".into()),
        ..Settings::default()
    };
    let os = OpenStack::connect(&s).await.unwrap();
    let demo = pid(&cloud, "demo");
    assert_eq!(*os.project_id(), demo);
    assert!(os.for_project(&demo).is_ok());
    let err = os.for_project(&pid(&cloud, "other")).unwrap_err();
    assert!(matches!(err, OpenStackError::ScopeUnavailable { .. }), "{err}");

    // A member sees its own project's volumes, owned by that project.
    let volumes: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    assert!(volumes.iter().all(|v| v.project_id == demo));

    let bad = Settings { application_credential_secret: Some("wrong-secret".into()), ..s };
    let err = OpenStack::connect(&bad).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-secret"));
}

#[tokio::test]
async fn clouds_yaml_with_secure_yaml_selects_the_cloud() {
    let cloud = small_cloud();
    let dir = tempfile::tempdir().unwrap();
    let clouds = dir.path().join("clouds.yaml");
    let secure = dir.path().join("secure.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  emu:\n    auth:\n      auth_url: {}\n      username: staffeln\n      project_name: admin\n      \
             user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    \
             interface: internal\n  emu-appcred:\n    auth_type: v3applicationcredential\n    auth:\n      \
             auth_url: {}\n      application_credential_name: alice-cred\n      username: alice\n      \
             user_domain_name: Default\n",
            cloud.auth_url(),
            cloud.auth_url()
        ),
    )
    .unwrap();
    std::fs::write(
        &secure,
        "clouds:\n  emu:\n    auth:\n      password: staffeln-secret\n  emu-appcred:\n    auth:\n      \
         application_credential_secret: alice-app-secret\n",
    )
    .unwrap();
    let paths = SearchPaths { clouds: vec![dir.path().join("absent.yaml"), clouds], secure: vec![secure] };

    let os =
        OpenStack::connect_with(&Settings { cloud: Some("emu".into()), ..Settings::default() }, &paths).await.unwrap();
    assert_eq!(*os.project_id(), pid(&cloud, "admin"));
    let volumes: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    assert_eq!(volumes.len(), 5);

    let os = OpenStack::connect_with(&Settings { cloud: Some("emu-appcred".into()), ..Settings::default() }, &paths)
        .await
        .unwrap();
    assert_eq!(*os.project_id(), pid(&cloud, "demo"));

    let err = OpenStack::connect_with(&Settings { cloud: Some("nope".into()), ..Settings::default() }, &paths)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("emu, emu-appcred"), "{err}");
}

#[tokio::test]
async fn tokens_are_cached_per_project_and_reissued_once_after_401() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    assert_eq!(calls(&cloud, TOKENS), 1);
    for _ in 0..3 {
        os.backup_quota(&pid(&cloud, "demo")).await.unwrap();
    }
    let _: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    assert_eq!(calls(&cloud, TOKENS), 1, "the token is reused");

    // Clones and handles for the same project share the token.
    let same = os.for_project(&pid(&cloud, "admin")).unwrap();
    same.backup_quota(&pid(&cloud, "admin")).await.unwrap();
    assert_eq!(calls(&cloud, TOKENS), 1);

    // Another project: one more token, then reused.
    let demo = os.for_project(&pid(&cloud, "demo")).unwrap();
    let _: Vec<_> = demo.volumes(None).try_collect().await.unwrap();
    let _: Vec<_> = demo.volumes(None).try_collect().await.unwrap();
    assert_eq!(calls(&cloud, TOKENS), 2);

    // Keystone revokes everything: the next call gets 401, re-issues, succeeds.
    cloud.control().expire_tokens();
    cloud.control().reset_calls();
    os.backup_quota(&pid(&cloud, "demo")).await.unwrap();
    assert_eq!(calls(&cloud, TOKENS), 1, "one re-issue");
    assert_eq!(calls(&cloud, ("GET", "/volume/os-quota-sets/{id}")), 2, "the call is repeated once");
    os.backup_quota(&pid(&cloud, "demo")).await.unwrap();
    assert_eq!(calls(&cloud, TOKENS), 1, "the new token is cached");
}

#[tokio::test]
async fn backups_are_owned_and_counted_by_the_volumes_project() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    let demo = pid(&cloud, "demo");
    let before_demo = os.backup_quota(&demo).await.unwrap();
    let before_admin = os.backup_quota(os.project_id()).await.unwrap();
    assert_eq!((before_demo.backups.limit, before_demo.gigabytes.limit), (5, 100));

    let mut request = BackupRequest::new(vid(&cloud, "data-1")); // in-use: force
    request.name = Some("staffeln-1".into());
    request.description = Some("made by a test".into());
    request.metadata = BTreeMap::from([("staffeln".to_owned(), "yes".to_owned())]);
    let id = os.for_project(&demo).unwrap().create_backup(&request).await.unwrap();

    let backup = os.backup(&id).await.unwrap();
    assert_eq!(backup.project_id, demo);
    assert_eq!(backup.status, BackupStatus::Creating);
    assert_eq!(backup.volume_id, vid(&cloud, "data-1"));
    assert_eq!(backup.name.as_deref(), Some("staffeln-1"));
    assert_eq!(backup.metadata.get("staffeln").map(String::as_str), Some("yes"));
    assert_eq!(backup.kind(), BackupKind::Full);

    let after_demo = os.backup_quota(&demo).await.unwrap();
    assert_eq!(after_demo.backups.in_use, before_demo.backups.in_use + 1);
    assert_eq!(after_demo.gigabytes.in_use, before_demo.gigabytes.in_use + 10);
    assert_eq!(os.backup_quota(os.project_id()).await.unwrap(), before_admin);

    let listed: Vec<_> =
        os.backups(&BackupFilter { project_id: Some(demo.clone()), ..Default::default() }).try_collect().await.unwrap();
    assert_eq!(listed.iter().map(|b| &b.id).collect::<Vec<_>>(), vec![&id]);
    assert_eq!(listed[0].project_id, demo);
}

#[tokio::test]
async fn backup_lifecycle_incremental_export_delete_and_force_delete() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    let demo = os.for_project(&pid(&cloud, "demo")).unwrap();
    let spare = vid(&cloud, "spare");

    let full = demo.create_backup(&BackupRequest::new(spare.clone())).await.unwrap();
    assert_eq!(cloud.control().volume_status(spare.as_str()).as_deref(), Some("backing-up"));
    cloud.control().settle();
    let b = demo.backup(&full).await.unwrap();
    assert_eq!(b.status, BackupStatus::Available);
    assert_eq!(b.size_gb, 20);
    let vol = os
        .volumes(None)
        .try_filter(|v| futures_util::future::ready(v.id == spare))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(vol[0].status, VolumeStatus::Available);

    let record = os.export_backup_record(&full).await.unwrap();
    assert!(!record.backup_url.is_empty() && !record.backup_service.is_empty(), "{record:?}");

    let mut inc = BackupRequest::new(spare.clone());
    inc.kind = BackupKind::Incremental;
    let child = demo.create_backup(&inc).await.unwrap();
    cloud.control().settle();
    let child_backup = demo.backup(&child).await.unwrap();
    assert!(child_backup.is_incremental);
    assert!(demo.backup(&full).await.unwrap().has_dependent_backups);

    let err = demo.delete_backup(&full).await.unwrap_err();
    assert!(err.is_conflict_with_dependents(), "{err}");

    demo.delete_backup(&child).await.unwrap();
    cloud.control().settle();
    assert!(demo.backup(&child).await.unwrap_err().is_not_found());
    demo.delete_backup(&full).await.unwrap();
    cloud.control().settle();
    assert_eq!(cloud.control().backup_status(full.as_str()), None);

    // A backup stuck in creating can only be force-deleted (by an admin).
    cloud.control().set_create_outcome(Some(spare.as_str()), BackupOutcome::Stick);
    let stuck = demo.create_backup(&BackupRequest::new(spare.clone())).await.unwrap();
    cloud.control().settle();
    let err = demo.delete_backup(&stuck).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    os.force_delete_backup(&stuck).await.unwrap();
    cloud.control().settle();
    assert!(os.backup(&stuck).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn quota_exceeded_and_bad_requests_surface_at_once_with_the_message() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    let demo = os.for_project(&pid(&cloud, "demo")).unwrap();

    // 404 (a skip code): no retry, the OpenStack message and request id kept.
    cloud.control().reset_calls();
    let missing = BackupId("5f1c0000-0000-4000-8000-0000000000e2".into());
    let err = os.backup(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.message(), Some("Backup 5f1c0000-0000-4000-8000-0000000000e2 could not be found."));
    assert!(err.request_id().is_some_and(|r| r.starts_with("req-")), "{err:?}");
    assert!(err.to_string().contains("GET http://127.0.0.1:"), "{err}");
    assert_eq!(calls(&cloud, ("GET", "/volume/backups/{id}")), 1);

    // 400: the backup is still creating.
    let id = demo.create_backup(&BackupRequest::new(vid(&cloud, "spare"))).await.unwrap();
    let err = demo.delete_backup(&id).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.message(), Some("Invalid backup: Backup status must be available or error"));
    assert_eq!(calls(&cloud, ("DELETE", "/volume/backups/{id}")), 1);

    // 413: demo has 100 GiB of backup quota; data-2 is 30 GiB.
    cloud.control().settle();
    let mut n = 0;
    let err = loop {
        match demo.create_backup(&BackupRequest::new(vid(&cloud, "data-2"))).await {
            Ok(_) => {
                n += 1;
                cloud.control().settle(); // the volume is backing-up until then
            }
            Err(e) => break e,
        }
        assert!(n < 10, "quota never hit");
    };
    assert!(err.is_quota_exceeded(), "{err}");
    assert!(err.message().is_some_and(|m| m.starts_with("VolumeBackupSizeExceedsAvailableQuota")), "{err}");
    assert_eq!(calls(&cloud, ("POST", "/volume/backups")), 2 + n);
}

#[tokio::test]
async fn ten_thousand_volumes_stream_through_every_page() {
    let cloud = start(Scenario::generate(25, 0, 10_000, 7));
    let os = admin(&cloud).await;
    let mut ids = BTreeSet::new();
    let mut projects = BTreeSet::new();
    let mut stream = os.volumes(None);
    while let Some(v) = stream.try_next().await.unwrap() {
        projects.insert(v.project_id.clone());
        assert!(ids.insert(v.id), "a volume came twice");
    }
    assert_eq!(ids.len(), 10_000);
    assert_eq!(projects.len(), 25);
    let pages = calls(&cloud, ("GET", "/volume/volumes/detail"));
    assert!(pages >= 10, "{pages} pages");

    // One project's share, filtered by the service.
    let one = ProjectId(cloud.control().project_id("project-0003").unwrap());
    let count = os.volumes(Some(&one)).try_fold(0, |n, _| futures_util::future::ready(Ok(n + 1))).await.unwrap();
    assert_eq!(count, 400);
}

#[tokio::test]
async fn faults_at_twenty_percent_are_absorbed_by_retries() {
    let cloud = start(Scenario::generate(4, 500, 3_000, 11));
    let os = admin(&cloud).await;
    let demo = pid(&cloud, "project-0001");
    cloud.control().add_fault(Fault {
        probability: 0.2,
        ..Fault::new(Service::Volume, None, None, FaultEffect::Status { code: 500 })
    });
    cloud.control().add_fault(Fault {
        probability: 0.2,
        ..Fault::new(Service::Volume, None, None, FaultEffect::Status { code: 503 })
    });
    cloud.control().add_fault(Fault {
        probability: 0.2,
        ..Fault::new(Service::Compute, None, None, FaultEffect::Status { code: 502 })
    });
    cloud.control().reset_calls();

    let volumes: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    assert_eq!(volumes.len(), 3_000);
    let servers: Vec<_> = os.servers(None).try_collect().await.unwrap();
    assert_eq!(servers.len(), 500);
    for _ in 0..40 {
        os.backup_quota(&demo).await.unwrap();
    }
    let quota_calls = calls(&cloud, ("GET", "/volume/os-quota-sets/{id}"));
    assert!(quota_calls > 40, "faults were injected and retried: {quota_calls} calls");
}

#[tokio::test]
async fn retry_after_is_honoured_and_bounded() {
    let cloud = small_cloud();
    let control = cloud.control();
    let quota_route = ("GET", "/volume/os-quota-sets/{id}");
    let s = Settings {
        retry_timeout: Duration::from_secs(5),
        max_retry_interval: Duration::from_secs(30),
        ..settings(&cloud.admin())
    };
    let os = OpenStack::connect(&s).await.unwrap();
    let demo = pid(&cloud, "demo");
    os.backup_quota(&demo).await.unwrap(); // discovery done

    // 429 with Retry-After: 0, twice: retried at once, then it works.
    control.add_fault(
        Fault::new(Service::Volume, Some("GET"), Some("/os-quota-sets"), FaultEffect::RateLimit { retry_after: 0 })
            .times(2),
    );
    control.reset_calls();
    os.backup_quota(&demo).await.unwrap();
    assert_eq!(calls(&cloud, quota_route), 3);

    // Retry-After: 3600 does not fit in retry_timeout (5 s): no retry at all.
    control.add_fault(
        Fault::new(Service::Volume, Some("GET"), Some("/os-quota-sets"), FaultEffect::RateLimit { retry_after: 3600 })
            .times(1),
    );
    control.reset_calls();
    let err = os.backup_quota(&demo).await.unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert_eq!(calls(&cloud, quota_route), 1);

    // The same budget allows an ordinary 503 to be retried.
    control.add_fault(
        Fault::new(Service::Volume, Some("GET"), Some("/os-quota-sets"), FaultEffect::Status { code: 503 }).times(1),
    );
    control.reset_calls();
    os.backup_quota(&demo).await.unwrap();
    assert_eq!(calls(&cloud, quota_route), 2);

    // A failing POST /backups (500) is not repeated: the backup might exist.
    control.add_fault(
        Fault::new(Service::Volume, Some("POST"), Some("/backups"), FaultEffect::Status { code: 500 }).times(1),
    );
    control.reset_calls();
    let err =
        os.for_project(&demo).unwrap().create_backup(&BackupRequest::new(vid(&cloud, "spare"))).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(calls(&cloud, ("POST", "/volume/backups")), 1);
}

#[tokio::test]
async fn retries_give_up_within_the_total_budget() {
    let cloud = small_cloud();
    let s = Settings {
        retry_timeout: Duration::from_millis(300),
        max_retry_interval: Duration::from_millis(50),
        ..settings(&cloud.admin())
    };
    let os = OpenStack::connect(&s).await.unwrap();
    let demo = pid(&cloud, "demo");
    os.backup_quota(&demo).await.unwrap();
    cloud.control().add_fault(Fault::new(
        Service::Volume,
        Some("GET"),
        Some("/os-quota-sets"),
        FaultEffect::Status { code: 502 },
    ));
    cloud.control().reset_calls();
    let err = os.backup_quota(&demo).await.unwrap_err();
    assert!(matches!(err, OpenStackError::RetriesExhausted { .. }), "{err}");
    assert_eq!(err.status(), Some(502));
    let n = calls(&cloud, ("GET", "/volume/os-quota-sets/{id}"));
    // at most 50 ms per wait, 300 ms in all: more than one attempt, far fewer than unbounded
    assert!(n >= 2, "{n} attempts");
}

#[tokio::test]
async fn no_secret_appears_in_errors_or_debug_output() {
    let cloud = small_cloud();
    let good = settings(&cloud.admin());
    let bad = Settings { password: Some("not-the-password-42".into()), ..good.clone() };
    let err = OpenStack::connect(&bad).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert_eq!(err.message(), Some("The request you have made requires authentication."));
    let mut shown = format!("{err} | {err:?} | {bad:?}");

    let os = OpenStack::connect(&good).await.unwrap();
    shown.push_str(&format!("{os:?}"));
    let err = os.backup(&BackupId("nope".into())).await.unwrap_err();
    shown.push_str(&format!("{err} | {err:?}"));
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&s.to_string());
        source = s.source();
    }
    // emulator tokens start like Fernet tokens do
    for secret in ["not-the-password-42", "staffeln-secret", "alice-app-secret", "gAAAAA"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert_eq!(
        os.microversion(ServiceType::BlockStorage).await.unwrap().map(|m| m.to_string()).as_deref(),
        Some("3.64")
    );
}

#[tokio::test]
async fn servers_stream_with_metadata_and_attached_volumes() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    let servers: Vec<_> = os.servers(None).try_collect().await.unwrap();
    let web = servers.iter().find(|s| s.name == "web").expect("web is listed");
    assert_eq!(web.project_id, pid(&cloud, "demo"));
    assert_eq!(web.status, "ACTIVE");
    assert_eq!(web.metadata.get("role").map(String::as_str), Some("frontend"));
    assert_eq!(web.volume_ids, vec![vid(&cloud, "data-1")]);
    assert_eq!(servers.len(), 2);

    let volumes: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    let data1 = volumes.iter().find(|v| v.id == vid(&cloud, "data-1")).unwrap();
    assert_eq!(data1.status, VolumeStatus::InUse);
    assert_eq!(data1.attachments, vec![web.id.clone()]);
    assert_eq!(data1.metadata.get("backup").map(String::as_str), Some("daily"));

    let other: Vec<_> = os.servers(Some(&pid(&cloud, "other"))).try_collect().await.unwrap();
    assert!(other.is_empty(), "{other:?}");
}

#[tokio::test]
async fn a_large_fleet_of_servers_pages_and_matches_its_volumes() {
    let cloud = start(Scenario::generate(10, 2_500, 3_000, 3));
    let os = admin(&cloud).await;
    let servers: Vec<_> = os.servers(None).try_collect().await.unwrap();
    let ids: BTreeSet<_> = servers.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), 2_500);
    assert!(calls(&cloud, ("GET", "/compute/servers/detail")) >= 3);
    let volumes: Vec<_> = os.volumes(None).try_collect().await.unwrap();
    let attached_by_nova: BTreeSet<_> = servers.iter().flat_map(|s| s.volume_ids.iter().cloned()).collect();
    let attached_by_cinder: BTreeSet<_> =
        volumes.iter().filter(|v| !v.attachments.is_empty()).map(|v| v.id.clone()).collect();
    assert_eq!(attached_by_nova, attached_by_cinder);
    assert!(attached_by_nova.len() > 1_000, "{}", attached_by_nova.len());
}

#[tokio::test]
async fn server_metadata_is_set_one_key_at_a_time() {
    let cloud = small_cloud();
    let os = admin(&cloud).await;
    let server_id = |name: &str| staffeln::objects::ServerId(cloud.control().server_id(name).unwrap());
    let web = server_id("web");
    os.set_server_metadata(&web, "staffeln:last_backup", "2026-11-25T10:00:00Z").await.unwrap();
    os.set_server_metadata(&web, "staffeln:last_backup", "2026-11-26T10:00:00Z").await.unwrap();
    let servers: Vec<_> = os.servers(None).try_collect().await.unwrap();
    let listed = servers.iter().find(|s| s.id == web).unwrap();
    assert_eq!(
        listed.metadata,
        BTreeMap::from([
            ("role".to_owned(), "frontend".to_owned()),
            ("staffeln:last_backup".to_owned(), "2026-11-26T10:00:00Z".to_owned()),
        ])
    );

    // db is locked, and a member may not override the lock: 409 at once,
    // with Nova's message (admins may override it).
    let alice = OpenStack::connect(&settings(&cloud.credentials("alice").unwrap())).await.unwrap();
    cloud.control().reset_calls();
    let err = alice.set_server_metadata(&server_id("db"), "k", "v").await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.message().is_some_and(|m| m.contains("is locked")), "{err}");
    assert_eq!(calls(&cloud, ("POST", "/compute/servers/{id}/metadata")), 1);

    // Nova's 400 for a key with a slash.
    let err = os.set_server_metadata(&web, "a/b", "x").await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");

    // Metadata merges are safe to repeat: a 500 is retried.
    cloud.control().add_fault(
        Fault::new(Service::Compute, Some("POST"), Some("/servers"), FaultEffect::Status { code: 500 }).times(1),
    );
    cloud.control().reset_calls();
    os.set_server_metadata(&web, "k", "v").await.unwrap();
    assert_eq!(calls(&cloud, ("POST", "/compute/servers/{id}/metadata")), 2);
}

#[tokio::test]
async fn both_catalog_url_forms_work() {
    let mut scenario = Scenario::small();
    scenario.application_credentials.clear();
    let opts = FakeOptions { cinder_url_with_project: false, nova_url_with_project: true, ..FakeOptions::default() };
    let cloud = FakeCloud::start(with_service_roles(scenario), opts).unwrap();
    let os = admin(&cloud).await;
    let servers: Vec<_> = os.servers(None).try_collect().await.unwrap();
    assert_eq!(servers.len(), 2);
    let demo = os.for_project(&pid(&cloud, "demo")).unwrap();
    let web = staffeln::objects::ServerId(cloud.control().server_id("web").unwrap());
    demo.set_server_metadata(&web, "k", "v").await.unwrap();
    let id = demo.create_backup(&BackupRequest::new(vid(&cloud, "spare"))).await.unwrap();
    assert_eq!(os.backup(&id).await.unwrap().project_id, pid(&cloud, "demo"));
    assert_eq!(os.microversion(ServiceType::Compute).await.unwrap().map(|m| m.to_string()).as_deref(), Some("2.1"));
}

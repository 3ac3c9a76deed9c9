//! `GET /metrics`: Prometheus text format (0.0.4).
//!
//! In-process counters (requests by route and status, guard answers by
//! result) plus what the database records, read at each scrape:
//!
//! | series | type | from |
//! |---|---|---|
//! | `staffeln_api_requests_total{route,status}` | counter | this process |
//! | `staffeln_api_guard_decisions_total{result}` | counter | this process: `allowed`, `denied`, `error`, `bad_request` |
//! | `staffeln_api_guard_cache_hits_total` | counter | this process |
//! | `staffeln_api_guard_cinder_lookups_total` | counter | this process: requests without a target that made the guard ask Cinder |
//! | `staffeln_database_up` | gauge | 1 when the queries below succeeded |
//! | `staffeln_volume_last_backup_timestamp_seconds{project_id,volume_id}` | gauge | newest `backup_data` row per volume |
//! | `staffeln_project_backups{project_id,result}` | gauge | `queue_data`: `created` (tasks done), `failed` (tasks failed), `deleted` (done tasks whose backup is no longer in `backup_data`: retention deleted it) |
//! | `staffeln_queue_tasks{state}` | gauge | `queue_data` by state, every state listed (`unfinished`: backups left running after `backup_cycle_timeout`) |
//! | `staffeln_backups_stuck{project_id}` | gauge | `queue_data`: backups still being created that look stuck (slower than `backup_stuck_throughput`) |
//! | `staffeln_last_backup_cycle_duration_seconds` | gauge | newest finished backup cycle (`cycles`) |
//! | `staffeln_last_backup_cycle_finished_timestamp_seconds` | gauge | the same cycle's end |
//! | `staffeln_last_backup_cycle_slot_utilisation` | gauge | the same cycle: seconds its backups ran, summed, over (slots the limits allow at once × its duration), 0 to 1 |
//! | `staffeln_volume_last_success_timestamp_seconds{project_id,volume_id}` | gauge | `rpo_status`: newest good backup at the last assessment |
//! | `staffeln_volume_within_rpo{project_id,volume_id}` | gauge | `rpo_status`: 1 within, 0 out of RPO |
//! | `staffeln_project_rpo_compliance{project_id}` | gauge | `rpo_status`: share of the project's flagged volumes within RPO |
//! | `staffeln_quota_exhaustion_days{project_id,quota}` | gauge | `quota_projections`: days from the assessment to the projected exhaustion |
//! | `staffeln_quota_warning{project_id}` | gauge | `quota_projections`: 1 when that is within `quota_warning_horizon` |
//! | `staffeln_restore_drills{result}` | gauge | `restore_drills`: drills recorded, `passed` and `failed` |
//! | `staffeln_restore_drill_last_duration_seconds` | gauge | `restore_drills`: the newest drill's duration |
//!
//! The database series are gauges: they follow the tables, which the
//! conductor may prune.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use chrono::NaiveDateTime;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tracing::warn;

use super::app::App;
use super::counters::Snapshot;
use crate::db::tasks::CycleRow;
use crate::db::{DbError, backups, tasks};
use crate::objects::TaskState;
use crate::service::chain;

/// What the database says, read at one scrape.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    /// `(project_id, volume_id, newest backup)`.
    pub last_per_volume: Vec<(String, String, NaiveDateTime)>,
    /// `(project_id, state, tasks)`.
    pub tasks_by_project: Vec<(String, String, i64)>,
    /// `(project_id, done tasks whose backup was forgotten)`.
    pub deleted_by_project: Vec<(String, i64)>,
    pub last_cycle: Option<CycleRow>,
    /// Projects where the last finished cycle found no role for the service user.
    pub projects_without_role: Vec<String>,
    /// `(project_id, backups being created that look stuck)`.
    pub stuck_by_project: Vec<(String, i64)>,
    /// The newest assessment (`rpo_status`, `quota_projections`).
    pub rpo: Vec<crate::db::assurance::RpoRow>,
    pub quotas: Vec<crate::db::assurance::QuotaRow>,
    /// `(passed, failed)` drills and the newest one's duration.
    pub drills: (i64, i64, Option<i64>),
}

fn read_db(conn: &mut crate::db::AnyConnection) -> Result<DbStats, DbError> {
    let last_cycle = tasks::latest_finished_cycle(conn, "backup")?;
    let projects_without_role = match &last_cycle {
        Some(cycle) => tasks::projects_without_role(conn, &cycle.id)?,
        None => Vec::new(),
    };
    Ok(DbStats {
        last_per_volume: backups::last_per_volume(conn)?,
        tasks_by_project: tasks::counts_by_project_and_state(conn)?,
        deleted_by_project: tasks::forgotten_by_project(conn)?,
        last_cycle,
        projects_without_role,
        stuck_by_project: tasks::stuck_by_project(conn)?,
        rpo: crate::db::assurance::rpo(conn)?,
        quotas: crate::db::assurance::quotas(conn)?,
        drills: crate::db::restore_drills::summary(conn)?,
    })
}

/// A label value, escaped (`\`, `"`, newline).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text (pure: counters and database figures in, text out).
pub fn render(counters: &Snapshot, db: Option<&DbStats>) -> String {
    let mut out = String::new();
    header(&mut out, "staffeln_api_requests_total", "counter", "HTTP requests served, by route and status.");
    for ((route, status), n) in &counters.requests {
        let _ = writeln!(out, "staffeln_api_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", label(route));
    }
    header(&mut out, "staffeln_api_guard_decisions_total", "counter", "Policy guard answers, by result.");
    for (result, n) in &counters.guard {
        let _ = writeln!(out, "staffeln_api_guard_decisions_total{{result=\"{result}\"}} {n}");
    }
    header(
        &mut out,
        "staffeln_api_guard_cache_hits_total",
        "counter",
        "Policy guard refusals of backups remembered as automated.",
    );
    let _ = writeln!(out, "staffeln_api_guard_cache_hits_total {}", counters.cache_hits);
    header(
        &mut out,
        "staffeln_api_guard_cinder_lookups_total",
        "counter",
        "Policy guard requests without a target that made the guard ask Cinder.",
    );
    let _ = writeln!(out, "staffeln_api_guard_cinder_lookups_total {}", counters.cinder_lookups);
    header(&mut out, "staffeln_database_up", "gauge", "Whether the database figures below could be read.");
    let _ = writeln!(out, "staffeln_database_up {}", u8::from(db.is_some()));
    let Some(db) = db else { return out };

    header(
        &mut out,
        "staffeln_volume_last_backup_timestamp_seconds",
        "gauge",
        "Time of the newest backup Staffeln recorded for a volume, in Unix seconds.",
    );
    for (project, volume, at) in &db.last_per_volume {
        let _ = writeln!(
            out,
            "staffeln_volume_last_backup_timestamp_seconds{{project_id=\"{}\",volume_id=\"{}\"}} {}",
            label(project),
            label(volume),
            at.and_utc().timestamp()
        );
    }
    header(
        &mut out,
        "staffeln_project_backups",
        "gauge",
        "Backups by project as the task queue records them: created, failed, and deleted by retention.",
    );
    let mut by_project: BTreeMap<&str, [i64; 3]> = BTreeMap::new();
    for (project, state, n) in &db.tasks_by_project {
        let slot = match state.as_str() {
            "done" => 0,
            "failed" => 1,
            _ => continue,
        };
        by_project.entry(project).or_default()[slot] += n;
    }
    for (project, n) in &db.deleted_by_project {
        by_project.entry(project).or_default()[2] += n;
    }
    for (project, counts) in &by_project {
        for (result, n) in ["created", "failed", "deleted"].iter().zip(counts) {
            let _ =
                writeln!(out, "staffeln_project_backups{{project_id=\"{}\",result=\"{result}\"}} {n}", label(project));
        }
    }
    header(
        &mut out,
        "staffeln_project_no_role",
        "gauge",
        "1 for each project where the last backup cycle found no role for the service user: grant it a role there.",
    );
    for project in &db.projects_without_role {
        let _ = writeln!(out, "staffeln_project_no_role{{project_id=\"{}\"}} 1", label(project));
    }
    header(
        &mut out,
        "staffeln_backups_stuck",
        "gauge",
        "Backups still being created that look stuck (slower than backup_stuck_throughput), by project; never cancelled.",
    );
    for (project, n) in &db.stuck_by_project {
        let _ = writeln!(out, "staffeln_backups_stuck{{project_id=\"{}\"}} {n}", label(project));
    }
    header(&mut out, "staffeln_queue_tasks", "gauge", "Tasks in the conductors' queue, by state.");
    let mut by_state: BTreeMap<&str, i64> = TaskState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for (_, state, n) in &db.tasks_by_project {
        *by_state.entry(state.as_str()).or_default() += n;
    }
    for (state, n) in &by_state {
        let _ = writeln!(out, "staffeln_queue_tasks{{state=\"{}\"}} {n}", label(state));
    }
    render_assurance(&mut out, db);
    if let Some(cycle) = &db.last_cycle
        && let Some(finished) = cycle.finished_at
    {
        header(
            &mut out,
            "staffeln_last_backup_cycle_duration_seconds",
            "gauge",
            "Duration of the newest finished backup cycle.",
        );
        let secs = (finished - cycle.started_at).num_milliseconds().max(0) as f64 / 1000.0;
        let _ = writeln!(out, "staffeln_last_backup_cycle_duration_seconds {secs}");
        header(
            &mut out,
            "staffeln_last_backup_cycle_finished_timestamp_seconds",
            "gauge",
            "End of the newest finished backup cycle, in Unix seconds.",
        );
        let _ =
            writeln!(out, "staffeln_last_backup_cycle_finished_timestamp_seconds {}", finished.and_utc().timestamp());
        if let Some(ratio) = cycle.slot_utilisation {
            header(
                &mut out,
                "staffeln_last_backup_cycle_slot_utilisation",
                "gauge",
                "Busy slot-seconds of the newest finished backup cycle over (slots allowed at once x its duration).",
            );
            let _ = writeln!(out, "staffeln_last_backup_cycle_slot_utilisation {ratio}");
        }
    }
    out
}

/// RPO, quota foresight and restore drills.
fn render_assurance(out: &mut String, db: &DbStats) {
    header(
        out,
        "staffeln_volume_last_success_timestamp_seconds",
        "gauge",
        "Newest good backup of a flagged volume at the last assessment, in Unix seconds.",
    );
    for r in &db.rpo {
        if let Some(at) = r.last_success {
            let _ = writeln!(
                out,
                "staffeln_volume_last_success_timestamp_seconds{{project_id=\"{}\",volume_id=\"{}\"}} {}",
                label(&r.project_id),
                label(&r.volume_id),
                at.and_utc().timestamp()
            );
        }
    }
    header(
        out,
        "staffeln_volume_within_rpo",
        "gauge",
        "1 when a flagged volume's newest good backup is within its expected period.",
    );
    let mut by_project: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &db.rpo {
        let _ = writeln!(
            out,
            "staffeln_volume_within_rpo{{project_id=\"{}\",volume_id=\"{}\"}} {}",
            label(&r.project_id),
            label(&r.volume_id),
            u8::from(r.within_rpo)
        );
        let e = by_project.entry(&r.project_id).or_default();
        e.0 += u64::from(r.within_rpo);
        e.1 += 1;
    }
    header(
        out,
        "staffeln_project_rpo_compliance",
        "gauge",
        "Share of a project's flagged volumes within RPO (0 to 1).",
    );
    for (project, (within, total)) in &by_project {
        let ratio = if *total == 0 { 1.0 } else { *within as f64 / *total as f64 };
        let _ = writeln!(out, "staffeln_project_rpo_compliance{{project_id=\"{}\"}} {ratio}", label(project));
    }
    header(
        out,
        "staffeln_quota_exhaustion_days",
        "gauge",
        "Days from the last assessment until a project's backup quota is projected to run out.",
    );
    for q in &db.quotas {
        if let (Some(quota), Some(at)) = (&q.quota, q.exhausted_at) {
            let days = (at - q.assessed_at).num_seconds().max(0) as f64 / 86_400.0;
            let _ = writeln!(
                out,
                "staffeln_quota_exhaustion_days{{project_id=\"{}\",quota=\"{}\"}} {days:.2}",
                label(&q.project_id),
                label(quota)
            );
        }
    }
    header(
        out,
        "staffeln_quota_warning",
        "gauge",
        "1 when a project's backup quota is projected to run out within quota_warning_horizon.",
    );
    for q in &db.quotas {
        let _ = writeln!(out, "staffeln_quota_warning{{project_id=\"{}\"}} {}", label(&q.project_id), u8::from(q.warn));
    }
    header(out, "staffeln_restore_drills", "gauge", "Restore drills recorded, by result.");
    let (passed, failed, last) = db.drills;
    let _ = writeln!(out, "staffeln_restore_drills{{result=\"passed\"}} {passed}");
    let _ = writeln!(out, "staffeln_restore_drills{{result=\"failed\"}} {failed}");
    if let Some(secs) = last {
        header(out, "staffeln_restore_drill_last_duration_seconds", "gauge", "Duration of the newest restore drill.");
        let _ = writeln!(out, "staffeln_restore_drill_last_duration_seconds {secs}");
    }
}

/// `/metrics`.
pub(crate) async fn metrics(app: &App) -> Response<Full<Bytes>> {
    let db = app.db.clone();
    let wait = app.db_wait();
    let stats = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn_timeout(wait)?;
        read_db(&mut conn)
    })
    .await;
    let stats = match stats {
        Ok(Ok(stats)) => Some(stats),
        Ok(Err(err)) => {
            warn!("metrics: cannot read the database: {}", chain(&err));
            None
        }
        Err(err) => {
            warn!("metrics: the database work did not finish: {err}");
            None
        }
    };
    let body = render(&app.counters.snapshot(), stats.as_ref());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::{NaiveDate, TimeDelta};

    use crate::api::counters::Counters;
    use crate::api::decide::Verdict;

    use super::*;

    #[test]
    fn renders_counters_and_database_figures() {
        let c = Counters::default();
        c.request("/v1/backup", 200);
        c.request("/v1/backup", 200);
        c.request("/v1/backup", 401);
        c.guard(Verdict::Allow, false);
        c.guard(Verdict::Deny, true);
        c.guard_bad_request();
        let at = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_opt(10, 0, 0).unwrap();
        let db = DbStats {
            last_per_volume: vec![("p\"1".into(), "v1".into(), at)],
            tasks_by_project: vec![("p1".into(), "done".into(), 3), ("p1".into(), "failed".into(), 1)],
            deleted_by_project: vec![("p1".into(), 2)],
            last_cycle: Some(CycleRow {
                id: "c".into(),
                kind: "backup".into(),
                leader: "h".into(),
                fencing_token: 1,
                started_at: at,
                planned_at: None,
                finished_at: Some(at + TimeDelta::milliseconds(1500)),
                planned: 0,
                summary: None,
                slot_utilisation: Some(0.875),
            }),
            projects_without_role: vec!["p3".into()],
            stuck_by_project: vec![("p2".into(), 1)],
            rpo: vec![
                crate::db::assurance::RpoRow {
                    project_id: "p1".into(),
                    volume_id: "v1".into(),
                    last_success: Some(at),
                    within_rpo: true,
                    reason: None,
                    assessed_at: at,
                },
                crate::db::assurance::RpoRow {
                    project_id: "p1".into(),
                    volume_id: "v2".into(),
                    last_success: None,
                    within_rpo: false,
                    reason: Some("no good backup yet".into()),
                    assessed_at: at,
                },
            ],
            quotas: vec![crate::db::assurance::QuotaRow {
                project_id: "p1".into(),
                quota: Some("backups".into()),
                exhausted_at: Some(at + TimeDelta::hours(36)),
                warn: true,
                assessed_at: at,
            }],
            drills: (4, 1, Some(42)),
        };
        let text = render(&c.snapshot(), Some(&db));
        for line in [
            "staffeln_api_requests_total{route=\"/v1/backup\",status=\"200\"} 2",
            "staffeln_api_requests_total{route=\"/v1/backup\",status=\"401\"} 1",
            "staffeln_api_guard_decisions_total{result=\"allowed\"} 1",
            "staffeln_api_guard_decisions_total{result=\"denied\"} 1",
            "staffeln_api_guard_decisions_total{result=\"bad_request\"} 1",
            "staffeln_api_guard_cache_hits_total 1",
            "staffeln_api_guard_cinder_lookups_total 0",
            "staffeln_database_up 1",
            "staffeln_volume_last_backup_timestamp_seconds{project_id=\"p\\\"1\",volume_id=\"v1\"} 1795600800",
            "staffeln_project_backups{project_id=\"p1\",result=\"created\"} 3",
            "staffeln_project_backups{project_id=\"p1\",result=\"failed\"} 1",
            "staffeln_project_backups{project_id=\"p1\",result=\"deleted\"} 2",
            "staffeln_queue_tasks{state=\"done\"} 3",
            "staffeln_project_no_role{project_id=\"p3\"} 1",
            "staffeln_queue_tasks{state=\"planned\"} 0",
            "staffeln_queue_tasks{state=\"unfinished\"} 0",
            "staffeln_backups_stuck{project_id=\"p2\"} 1",
            "staffeln_last_backup_cycle_duration_seconds 1.5",
            "staffeln_last_backup_cycle_slot_utilisation 0.875",
            "staffeln_volume_within_rpo{project_id=\"p1\",volume_id=\"v2\"} 0",
            "staffeln_volume_last_success_timestamp_seconds{project_id=\"p1\",volume_id=\"v1\"} 1795600800",
            "staffeln_project_rpo_compliance{project_id=\"p1\"} 0.5",
            "staffeln_quota_exhaustion_days{project_id=\"p1\",quota=\"backups\"} 1.50",
            "staffeln_quota_warning{project_id=\"p1\"} 1",
            "staffeln_restore_drills{result=\"failed\"} 1",
            "staffeln_restore_drill_last_duration_seconds 42",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let down = render(&c.snapshot(), None);
        assert!(down.contains("staffeln_database_up 0") && !down.contains("staffeln_queue_tasks"));
    }
}

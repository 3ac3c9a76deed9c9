//! The assurance loop: every cycle period (at least every 10 minutes) it
//! assesses the fleet and tells of volumes that left or are back within
//! their RPO and of projected quota exhaustion (log and notifications); on
//! `restore_drill_period` it runs a restore drill. One conductor at a time
//! (the `assurance-round` lease). It runs only when there is someone to
//! tell (notifications on) or drills to run: otherwise the digests assess
//! the fleet when they go out.

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::check::schedule_period;
use super::rpo::Transition;
use crate::conductor::node::Conductor;
use crate::objects::VolumeId;
use crate::service::Shutdown;

/// The lease one conductor holds while it assesses or drills.
pub const ASSURANCE_LEASE: &str = "assurance-round";

/// Whether the loop has anything to do with these settings.
pub fn wanted(conductor: &Conductor) -> bool {
    !conductor.events.is_noop() || conductor.settings.assurance.drill_period.is_some()
}

/// Runs until shutdown.
pub async fn assurance_loop(conductor: Conductor, mut shutdown: Shutdown) {
    let clock = conductor.clock.clone();
    let mut out_of_rpo: Vec<VolumeId> = Vec::new();
    let mut next_assess = clock.now();
    let mut next_drill: Option<DateTime<Utc>> =
        conductor.settings.assurance.drill_period.map(|p| conductor.started_at + p);
    loop {
        let wake = next_drill.map_or(next_assess, |d| d.min(next_assess));
        tokio::select! {
            () = shutdown.requested() => break,
            () = clock.park_until(Some(wake)) => {}
        }
        let now = clock.now();
        let ttl = conductor.settings.lease_time;
        let token = match conductor.take_lease(ASSURANCE_LEASE, ttl).await {
            Ok(Ok(token)) => token,
            Ok(Err(_)) => {
                next_assess = now + Duration::minutes(10);
                continue;
            }
            Err(err) => {
                warn!("cannot take the assurance lease: {err}");
                next_assess = now + Duration::minutes(10);
                continue;
            }
        };
        if now >= next_assess {
            let work = assess_and_tell(&conductor, &mut out_of_rpo);
            conductor.with_lease(ASSURANCE_LEASE, token, ttl, work).await;
            next_assess = now + schedule_period(&conductor.settings.backup_schedule, now).max(Duration::minutes(10));
        }
        if let Some(at) = next_drill
            && now >= at
        {
            let a = &conductor.settings.assurance;
            // Volumes retention's plan deletes from now are rotating: the
            // sample leaves out their only good backup. Without the plan no
            // drill runs (fail closed).
            match conductor.retention_preview(&conductor.settings.retention, None).await {
                Ok(plan) => {
                    let rotating = super::drill::rotating(plan.iter().map(|d| (&d.volume_id, d.action)));
                    let work = conductor.run_drills(a.drill_caps, &rotating, a.drill_timeout);
                    match conductor.with_lease(ASSURANCE_LEASE, token, ttl, work).await {
                        Some(Ok(reports)) => info!("restore drill: {} backups restored and checked", reports.len()),
                        Some(Err(err)) => warn!("restore drill failed: {err}"),
                        None => warn!("restore drill: lost the assurance lease"),
                    }
                }
                Err(err) => warn!("restore drill skipped: cannot read retention's plan: {err}"),
            }
            next_drill = a.drill_period.map(|p| clock.now() + p);
        }
    }
}

async fn assess_and_tell(conductor: &Conductor, out_of_rpo: &mut Vec<VolumeId>) {
    let a = match conductor.assess().await {
        Ok(a) => a,
        Err(err) => {
            warn!("cannot assess RPO compliance and quotas: {err}");
            return;
        }
    };
    for t in super::rpo::transitions(out_of_rpo, &a.rpo) {
        match t {
            Transition::Left(s) => {
                let reason = s.miss.as_ref().map(super::rpo::Miss::reason).unwrap_or_default();
                warn!(project.id = %s.project_id, volume.id = %s.volume_id, "volume out of its RPO: {reason}");
                conductor.events.rpo(true, &s.project_id.0, &s.volume_id.0, s.last_success, &reason);
            }
            Transition::Returned(s) => {
                info!(project.id = %s.project_id, volume.id = %s.volume_id, "volume back within its RPO");
                conductor.events.rpo(false, &s.project_id.0, &s.volume_id.0, s.last_success, "");
            }
        }
    }
    *out_of_rpo = a.rpo.iter().filter(|s| !s.within()).map(|s| s.volume_id.clone()).collect();
    for p in a.warnings() {
        if let (Some(message), Some((at, resource))) = (p.message(a.at), p.exhausted) {
            warn!(project.id = %p.project_id, "{message}");
            conductor.events.quota_projected(&p.project_id.0, resource.as_str(), at, &message);
        }
    }
    let c = a.compliance();
    info!("{} of {} volumes within RPO", c.within, c.total);
}

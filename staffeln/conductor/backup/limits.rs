//! Which planned tasks a conductor may start now: a pure choice under the
//! concurrency limits (overall, per project, per availability zone), counted
//! over the tasks in flight on every conductor, so the cinder-backup hosts
//! are never flooded. A zone's cap follows its backup hosts: Cinder runs
//! `backup_max_operations` (15 by default) per cinder-backup service, so a
//! zone with four usable hosts takes four times one host's share.

use std::collections::{HashMap, HashSet};

use crate::objects::BackupHost;

/// The limits of `[conductor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Over all projects and conductors (`usize::MAX`: none).
    pub overall: usize,
    pub per_project: usize,
    /// Per usable cinder-backup host of a zone.
    pub per_backup_host: usize,
    /// The operator's cap of every zone, when set; also every zone's cap
    /// while the backup hosts are unknown.
    pub per_az: Option<usize>,
}

impl Limits {
    /// A zone's cap while its backup hosts are unknown: the operator's
    /// per-zone cap, or one backup host's share.
    pub fn fallback_per_az(&self) -> usize {
        self.per_az.unwrap_or(self.per_backup_host)
    }
}

/// The cap of each availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCaps {
    zones: HashMap<String, usize>,
    otherwise: usize,
}

impl ZoneCaps {
    /// Every zone capped alike (the backup hosts unknown).
    pub fn uniform(cap: usize) -> ZoneCaps {
        ZoneCaps { zones: HashMap::new(), otherwise: cap }
    }

    /// The cap of `zone` (`""`: a task without a zone).
    pub fn cap(&self, zone: &str) -> usize {
        self.zones.get(zone).copied().unwrap_or(self.otherwise)
    }
}

/// The zones' caps from Cinder's backup hosts: in a zone with usable (up and
/// enabled) hosts, their number times `per_backup_host`, no more than the
/// operator's `per_az` when set; `None` (the list could not be read), and a
/// zone with no usable host listed, keep the fallback cap, so that a backup
/// is not held back on a guess: Cinder answers for a zone it cannot serve,
/// and that answer is recorded on the task.
pub fn zone_caps(hosts: Option<&[BackupHost]>, limits: Limits) -> ZoneCaps {
    let fallback = limits.fallback_per_az();
    let mut caps = ZoneCaps::uniform(fallback);
    for host in hosts.unwrap_or_default().iter().filter(|h| h.usable()) {
        *caps.zones.entry(host.zone.clone()).or_default() += limits.per_backup_host;
    }
    if let Some(per_az) = limits.per_az {
        caps.zones.values_mut().for_each(|cap| *cap = (*cap).min(per_az));
    }
    caps
}

/// A task as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    pub id: i64,
    pub project_id: &'a str,
    pub availability_zone: Option<&'a str>,
}

/// `candidates` (oldest first) reordered so that several conductors tend to
/// keep to projects of their own, and each does not fetch a token for every
/// project: first those of the `warm` projects (this conductor holds a
/// fresh token for them), then those of projects nobody else is working in,
/// last those of projects with backups another conductor started
/// (`elsewhere`); each part still oldest first. It only orders what may
/// start: the limits decide as before, and every candidate is taken in its
/// turn once the preferred ones run out.
pub fn warm_first<'a>(candidates: &[Slot<'a>], warm: &HashSet<&str>, elsewhere: &HashSet<&str>) -> Vec<Slot<'a>> {
    let mut ordered = candidates.to_vec();
    ordered.sort_by_key(|slot| match (warm.contains(slot.project_id), elsewhere.contains(slot.project_id)) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 2,
    });
    ordered
}

/// The ids of `candidates` (oldest first) to start, at most `max`, such that
/// with `in_flight` no limit is exceeded. Candidates that do not fit are
/// left for later; they do not block younger ones of other projects or zones.
pub fn pick(candidates: &[Slot<'_>], in_flight: &[Slot<'_>], limits: Limits, zones: &ZoneCaps, max: usize) -> Vec<i64> {
    let mut total = in_flight.len();
    let mut by_project: HashMap<&str, usize> = HashMap::new();
    let mut by_az: HashMap<&str, usize> = HashMap::new();
    for slot in in_flight {
        *by_project.entry(slot.project_id).or_default() += 1;
        *by_az.entry(slot.availability_zone.unwrap_or("")).or_default() += 1;
    }
    let mut chosen = Vec::new();
    for slot in candidates {
        if chosen.len() >= max || total >= limits.overall {
            break;
        }
        let project = by_project.entry(slot.project_id).or_default();
        if *project >= limits.per_project {
            continue;
        }
        let zone = slot.availability_zone.unwrap_or("");
        let az = by_az.entry(zone).or_default();
        if *az >= zones.cap(zone) {
            continue;
        }
        *project += 1;
        *az += 1;
        total += 1;
        chosen.push(slot.id);
    }
    chosen
}

/// The most backups the limits let run at once for `tasks` (a cycle's
/// backups): no more than the overall limit, than each zone's cap or each
/// project's limit summed over the zones and projects the tasks are in, nor
/// than the tasks themselves.
pub fn most_at_once(tasks: &[Slot<'_>], limits: Limits, zones: &ZoneCaps) -> usize {
    let mut by_project: HashMap<&str, usize> = HashMap::new();
    let mut by_az: HashMap<&str, usize> = HashMap::new();
    for slot in tasks {
        *by_project.entry(slot.project_id).or_default() += 1;
        *by_az.entry(slot.availability_zone.unwrap_or("")).or_default() += 1;
    }
    let zone_slots: usize = by_az.iter().map(|(zone, n)| (*n).min(zones.cap(zone))).sum();
    let projects: usize = by_project.values().map(|n| (*n).min(limits.per_project)).sum();
    limits.overall.min(zone_slots).min(projects)
}

/// How full a cycle kept its slots: the seconds its backups ran, summed,
/// against the slots the limits allow at once times the cycle's duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Utilisation {
    pub busy_slot_seconds: f64,
    pub slots: usize,
    pub cycle_seconds: f64,
}

impl Utilisation {
    /// Busy slot-seconds / (slots × cycle seconds), 0 to 1; `None` when the
    /// cycle ran no backup or took no time.
    pub fn ratio(&self) -> Option<f64> {
        let capacity = self.slots as f64 * self.cycle_seconds;
        (capacity > 0.0 && self.busy_slot_seconds > 0.0).then(|| (self.busy_slot_seconds / capacity).min(1.0))
    }
}

impl std::fmt::Display for Utilisation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ratio() {
            Some(r) => write!(
                f,
                "slot utilisation {:.1}% ({:.0} busy slot-seconds of {} slots × {:.0} s)",
                r * 100.0,
                self.busy_slot_seconds,
                self.slots,
                self.cycle_seconds
            ),
            None => write!(f, "slot utilisation n/a (no backup ran)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_projects_come_first_and_every_candidate_keeps_its_turn() {
        let c: Vec<Slot<'_>> =
            [(1, "p1"), (2, "p2"), (3, "p1"), (4, "p3"), (5, "p2")].iter().map(|&(i, p)| slot(i, p, "az")).collect();
        let ids = |v: Vec<Slot<'_>>| v.iter().map(|s| s.id).collect::<Vec<_>>();
        let none = HashSet::new();
        assert_eq!(ids(warm_first(&c, &HashSet::from(["p2"]), &none)), [2, 5, 1, 3, 4]);
        assert_eq!(ids(warm_first(&c, &none, &none)), [1, 2, 3, 4, 5], "nothing warm: oldest first");
        assert_eq!(ids(warm_first(&c, &HashSet::from(["p1", "p3", "p2"]), &none)), [1, 2, 3, 4, 5], "all warm");
        // Another conductor's projects come last, unless warm here too.
        assert_eq!(ids(warm_first(&c, &none, &HashSet::from(["p1"]))), [2, 4, 5, 1, 3]);
        assert_eq!(ids(warm_first(&c, &HashSet::from(["p3"]), &HashSet::from(["p1", "p3"]))), [4, 2, 5, 1, 3]);
        // The limits still decide: a warm project at its limit leaves its
        // slots to the others.
        let limits = Limits { overall: 3, per_project: 1, per_backup_host: 15, per_az: None };
        let picked = pick(&warm_first(&c, &HashSet::from(["p2"]), &none), &[], limits, &ZoneCaps::uniform(15), 10);
        assert_eq!(picked, [2, 1, 4]);
    }

    #[test]
    fn the_slots_of_a_cycle_are_bounded_by_every_limit_and_by_its_tasks() {
        let limits = Limits { overall: 30, per_project: 10, per_backup_host: 15, per_az: None };
        let z = &ZoneCaps::uniform(15);
        let many: Vec<Slot<'_>> = (0..40).map(|i| slot(i, if i % 2 == 0 { "p1" } else { "p2" }, "az1")).collect();
        assert_eq!(most_at_once(&many, limits, z), 15, "one zone: its limit");
        let two_zones: Vec<Slot<'_>> = (0..40).map(|i| slot(i, "p1", if i % 2 == 0 { "a" } else { "b" })).collect();
        assert_eq!(most_at_once(&two_zones, limits, z), 10, "one project: its limit");
        let spread: Vec<Slot<'_>> = (0..100)
            .map(|i| slot(i, ["p1", "p2", "p3", "p4"][i as usize % 4], ["a", "b", "c"][i as usize % 3]))
            .collect();
        assert_eq!(most_at_once(&spread, limits, z), 30, "overall");
        assert_eq!(most_at_once(&many[..3], limits, z), 3, "fewer tasks than slots");
        assert_eq!(most_at_once(&[], limits, z), 0);
    }

    #[test]
    fn utilisation_is_busy_slot_seconds_over_slots_times_duration() {
        let u = Utilisation { busy_slot_seconds: 12.0 * 59.0, slots: 4, cycle_seconds: 180.0 };
        assert!((u.ratio().unwrap() - 708.0 / 720.0).abs() < 1e-9);
        assert_eq!(u.to_string(), "slot utilisation 98.3% (708 busy slot-seconds of 4 slots × 180 s)");
        assert_eq!(Utilisation { busy_slot_seconds: 0.0, slots: 4, cycle_seconds: 10.0 }.ratio(), None);
        assert_eq!(Utilisation { busy_slot_seconds: 5.0, slots: 0, cycle_seconds: 10.0 }.ratio(), None);
    }

    fn slot(id: i64, project: &'static str, az: &'static str) -> Slot<'static> {
        Slot { id, project_id: project, availability_zone: Some(az) }
    }

    #[test]
    fn limits_hold_over_what_is_already_in_flight() {
        let limits = Limits { overall: 4, per_project: 2, per_backup_host: 3, per_az: None };
        let z = &ZoneCaps::uniform(3);
        let in_flight = [slot(1, "p1", "az1")];
        let candidates = [
            slot(2, "p1", "az1"),
            slot(3, "p1", "az1"),
            slot(4, "p2", "az1"),
            slot(5, "p2", "az2"),
            slot(6, "p3", "az2"),
        ];
        // p1 has one in flight: one more; az1 then has 2: one more (p2); overall 4 reached after p2/az2.
        assert_eq!(pick(&candidates, &in_flight, limits, z, 10), vec![2, 4, 5]);
    }

    #[test]
    fn max_and_overall_bound_the_choice() {
        let limits = Limits { overall: 2, per_project: 10, per_backup_host: 10, per_az: None };
        let z = &ZoneCaps::uniform(10);
        let candidates = [slot(1, "p", "a"), slot(2, "p", "a"), slot(3, "p", "a")];
        assert_eq!(pick(&candidates, &[], limits, z, 10), vec![1, 2]);
        assert_eq!(pick(&candidates, &[], Limits { overall: 10, ..limits }, z, 1), vec![1]);
        assert!(pick(&candidates, &[slot(9, "q", "b"), slot(8, "q", "b")], limits, z, 10).is_empty());
    }

    fn host(host: &str, zone: &str, up: bool, enabled: bool) -> BackupHost {
        BackupHost { host: host.into(), zone: zone.into(), up, enabled }
    }

    #[test]
    fn a_zone_takes_one_share_per_usable_backup_host() {
        let limits = Limits { overall: usize::MAX, per_project: 100, per_backup_host: 15, per_az: None };
        let hosts = [
            host("a1", "a", true, true),
            host("a2", "a", true, true),
            host("a3", "a", true, true),
            host("a4", "a", true, true),
            host("b1", "b", true, true),
            host("b2", "b", false, true),
            host("b3", "b", true, false),
            host("c1", "c", false, true),
        ];
        let caps = zone_caps(Some(&hosts), limits);
        assert_eq!(caps.cap("a"), 60, "four hosts up and enabled");
        assert_eq!(caps.cap("b"), 15, "one of three: one down, one disabled");
        assert_eq!(caps.cap("c"), 15, "no usable host: the fallback, Cinder answers");
        assert_eq!(caps.cap("elsewhere"), 15, "a zone Cinder does not list: the fallback");
        assert_eq!(caps.cap(""), 15);
        let unknown = zone_caps(None, limits);
        assert_eq!(unknown, ZoneCaps::uniform(15), "no list: one host's share everywhere");
    }

    #[test]
    fn an_operators_per_zone_cap_bounds_the_hosts_share_and_is_the_fallback() {
        let limits = Limits { overall: usize::MAX, per_project: 100, per_backup_host: 15, per_az: Some(40) };
        let hosts = [host("a1", "a", true, true), host("a2", "a", true, true), host("a3", "a", true, true)];
        let caps = zone_caps(Some(&hosts), limits);
        assert_eq!(caps.cap("a"), 40, "45 by the hosts, 40 by the operator");
        assert_eq!(caps.cap("b"), 40, "unlisted: the operator's cap");
        let small = zone_caps(Some(&hosts[..1]), Limits { per_az: Some(4), ..limits });
        assert_eq!(small.cap("a"), 4);
        assert_eq!(zone_caps(None, limits), ZoneCaps::uniform(40));
    }

    #[test]
    fn the_choice_fills_each_zone_to_its_own_cap() {
        let limits = Limits { overall: usize::MAX, per_project: 1000, per_backup_host: 15, per_az: None };
        let hosts: Vec<BackupHost> = (0..4)
            .map(|i| host(&format!("a{i}"), "a", true, true))
            .chain([host("b1", "b", true, true), host("b2", "b", false, true)])
            .collect();
        let caps = zone_caps(Some(&hosts), limits);
        let candidates: Vec<Slot<'_>> = (0..200).map(|i| slot(i, "p", if i % 2 == 0 { "a" } else { "b" })).collect();
        let chosen = pick(&candidates, &[], limits, &caps, usize::MAX);
        let in_a = chosen.iter().filter(|id| *id % 2 == 0).count();
        assert_eq!((in_a, chosen.len() - in_a), (60, 15));
        assert_eq!(most_at_once(&candidates, limits, &caps), 75);
        let capped = pick(&candidates, &[], Limits { overall: 30, ..limits }, &caps, usize::MAX);
        assert_eq!(capped.len(), 30, "the overall limit, when set, still binds");
    }
}

//! Which planned tasks a conductor may start now: a pure choice under the
//! concurrency limits (overall, per project, per availability zone), counted
//! over the tasks in flight on every conductor, so the cinder-backup hosts
//! are never flooded.

use std::collections::HashMap;

/// The limits of `[conductor]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub overall: usize,
    pub per_project: usize,
    pub per_az: usize,
}

/// A task as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    pub id: i64,
    pub project_id: &'a str,
    pub availability_zone: Option<&'a str>,
}

/// The ids of `candidates` (oldest first) to start, at most `max`, such that
/// with `in_flight` no limit is exceeded. Candidates that do not fit are
/// left for later; they do not block younger ones of other projects or zones.
pub fn pick(candidates: &[Slot<'_>], in_flight: &[Slot<'_>], limits: Limits, max: usize) -> Vec<i64> {
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
        let az = by_az.entry(slot.availability_zone.unwrap_or("")).or_default();
        if *az >= limits.per_az {
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
/// backups): no more than the overall limit, than each zone's limit or each
/// project's limit summed over the zones and projects the tasks are in, nor
/// than the tasks themselves.
pub fn most_at_once(tasks: &[Slot<'_>], limits: Limits) -> usize {
    let mut by_project: HashMap<&str, usize> = HashMap::new();
    let mut by_az: HashMap<&str, usize> = HashMap::new();
    for slot in tasks {
        *by_project.entry(slot.project_id).or_default() += 1;
        *by_az.entry(slot.availability_zone.unwrap_or("")).or_default() += 1;
    }
    let zones: usize = by_az.values().map(|n| (*n).min(limits.per_az)).sum();
    let projects: usize = by_project.values().map(|n| (*n).min(limits.per_project)).sum();
    limits.overall.min(zones).min(projects)
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
    fn the_slots_of_a_cycle_are_bounded_by_every_limit_and_by_its_tasks() {
        let limits = Limits { overall: 30, per_project: 10, per_az: 15 };
        let many: Vec<Slot<'_>> = (0..40).map(|i| slot(i, if i % 2 == 0 { "p1" } else { "p2" }, "az1")).collect();
        assert_eq!(most_at_once(&many, limits), 15, "one zone: its limit");
        let two_zones: Vec<Slot<'_>> = (0..40).map(|i| slot(i, "p1", if i % 2 == 0 { "a" } else { "b" })).collect();
        assert_eq!(most_at_once(&two_zones, limits), 10, "one project: its limit");
        let spread: Vec<Slot<'_>> = (0..100)
            .map(|i| slot(i, ["p1", "p2", "p3", "p4"][i as usize % 4], ["a", "b", "c"][i as usize % 3]))
            .collect();
        assert_eq!(most_at_once(&spread, limits), 30, "overall");
        assert_eq!(most_at_once(&many[..3], limits), 3, "fewer tasks than slots");
        assert_eq!(most_at_once(&[], limits), 0);
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
        let limits = Limits { overall: 4, per_project: 2, per_az: 3 };
        let in_flight = [slot(1, "p1", "az1")];
        let candidates = [
            slot(2, "p1", "az1"),
            slot(3, "p1", "az1"),
            slot(4, "p2", "az1"),
            slot(5, "p2", "az2"),
            slot(6, "p3", "az2"),
        ];
        // p1 has one in flight: one more; az1 then has 2: one more (p2); overall 4 reached after p2/az2.
        assert_eq!(pick(&candidates, &in_flight, limits, 10), vec![2, 4, 5]);
    }

    #[test]
    fn max_and_overall_bound_the_choice() {
        let limits = Limits { overall: 2, per_project: 10, per_az: 10 };
        let candidates = [slot(1, "p", "a"), slot(2, "p", "a"), slot(3, "p", "a")];
        assert_eq!(pick(&candidates, &[], limits, 10), vec![1, 2]);
        assert_eq!(pick(&candidates, &[], Limits { overall: 10, ..limits }, 1), vec![1]);
        assert!(pick(&candidates, &[slot(9, "q", "b"), slot(8, "q", "b")], limits, 10).is_empty());
    }
}

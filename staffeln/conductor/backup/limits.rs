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

#[cfg(test)]
mod tests {
    use super::*;

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

//! The chaos suite (issue 18): three real `staffeln-conductor` processes on
//! MariaDB against the emulated cloud, killed (`kill -9`), paused (SIGSTOP
//! past `claim_timeout`) or crashed at named checkpoints, with cloud faults
//! (5xx, 429, latency, token expiry, backups ending in error, deletes stuck
//! in `deleting`, servers going to ERROR, creates whose answer is lost) and
//! infrastructure faults (database sessions killed, SMTP down, database and
//! broker restarts). After each trial the invariants of `check.rs` are
//! checked: nothing duplicated, lost, stuck or wrongly deleted, each digest
//! sent once, no panic and no secret in any log.
//!
//! `cargo nextest run --test chaos` runs a short, seeded set; `tools/chaos
//! --trials N --seed S [--faults kill9,stop,…]` runs the same trials at
//! larger N and prints the figures (doc/chaos.md).

mod check;
mod infra;
mod rig;
mod trial;

use trial::{Figures, Kind};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `trials` trials cycling through `kinds`, seeds `seed`, `seed + 1`, …
fn suite(kinds: &[Kind], trials: u32, seed: u64) -> Figures {
    let keep = std::env::var_os("CHAOS_KEEP").is_some();
    let mut infra = infra::Infra::default();
    let mut figures = Figures::default();
    for n in 0..trials {
        let kind = kinds[n as usize % kinds.len()];
        let s = seed + u64::from(n);
        let outcome = trial::run(kind, s, n, &mut infra, keep);
        println!(
            "trial {n}: {} seed {s}: {} violations in {:.0} s",
            outcome.label,
            outcome.violations.total(),
            outcome.seconds
        );
        for d in &outcome.violations.details {
            println!("    {d}");
        }
        figures.add(&outcome);
    }
    println!("{}", figures.table());
    if let Ok(path) = std::env::var("CHAOS_REPORT") {
        let _ = std::fs::write(path, figures.table());
    }
    figures
}

fn kinds_from(text: &str) -> Vec<Kind> {
    text.split(',').map(|k| Kind::parse(k).unwrap_or_else(|| panic!("unknown fault kind {k:?}"))).collect()
}

/// The short version in the normal suite, or what `tools/chaos` asks for
/// (`CHAOS_TRIALS`, `CHAOS_SEED`, `CHAOS_FAULTS`).
#[test]
fn chaos_trials_lose_duplicate_and_wrongly_delete_nothing() {
    let kinds = kinds_from(&std::env::var("CHAOS_FAULTS").unwrap_or_else(|_| "checkpoint,kill9,stop".into()));
    let trials = env_or("CHAOS_TRIALS", 3u32);
    let seed = env_or("CHAOS_SEED", 18u64);
    let figures = suite(&kinds, trials, seed);
    assert!(
        figures.failed.is_empty(),
        "{} trial(s) broke an invariant:\n{}",
        figures.failed.len(),
        figures.failed.join("\n")
    );
}

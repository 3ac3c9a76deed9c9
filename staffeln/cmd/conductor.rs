//! staffeln-conductor: backup cycles, retention, digests and the conductor RPC topic.
fn main() -> std::process::ExitCode {
    staffeln::service::daemon(
        "staffeln-conductor",
        "Runs Staffeln's backup cycles, retention and digests.",
        staffeln::conductor::ConductorSettings::from_config,
        staffeln::conductor::serve,
    )
}

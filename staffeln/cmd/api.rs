//! staffeln-api: the oslo.policy guard Cinder calls before `backup:delete`, health and listing.
fn main() -> std::process::ExitCode {
    staffeln::service::daemon(
        "staffeln-api",
        "Serves the policy check that protects automated backups.",
        staffeln::api::ApiSettings::from_config,
        staffeln::api::serve,
    )
}

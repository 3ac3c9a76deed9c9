//! `staffeln-manage demo`: Staffeln on embedded defaults, no services needed.
//!
//! Today it shows the foundation: the configuration on embedded defaults with
//! the state in a (temporary) directory, a SQLite database created and
//! migrated there, and the effective configuration. The backup cycle against
//! the built-in emulated cloud, retention, digests and the policy guard join
//! as their issues land.

use std::path::Path;

use staffeln::conf::{self, Source};
use staffeln::db::{Database, DbSettings, migrate};

use crate::Failure;

pub fn run(dir: Option<&Path>) -> Result<(), Failure> {
    let temp;
    let dir = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.to_path_buf()
        }
        None => {
            temp = std::env::temp_dir().join(format!("staffeln-demo-{}", std::process::id()));
            std::fs::create_dir_all(&temp)?;
            temp
        }
    };
    println!("== Staffeln demo (state in {})", dir.display());
    let sources =
        [Source::Cli { group: "DEFAULT".into(), name: "state_path".into(), value: dir.display().to_string() }];
    let loaded = conf::load(&sources, &Default::default()).map_err(Failure::config)?;
    let config = loaded.config;
    println!("-- configuration: embedded defaults, state_path = {}", dir.display());
    let db = Database::connect(&DbSettings::from(&config.database))?;
    let applied = migrate::upgrade(&db)?;
    println!(
        "-- database: {} migrated ({} migration(s) applied, schema {})",
        db.url(),
        applied.len(),
        migrate::version(&db)?.unwrap_or_default()
    );
    println!("-- effective configuration (secrets masked):");
    print!("{}", crate::config::show(&config));
    println!("== done: the backup cycle, retention, digests and the guard join this demo as they land");
    Ok(())
}

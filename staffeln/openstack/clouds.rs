//! clouds.yaml: finding the file, picking the cloud, merging secure.yaml.
//!
//! Follows openstacksdk: `OS_CLIENT_CONFIG_FILE` (if set), then
//! `./clouds.yaml`, `~/.config/openstack/clouds.yaml`,
//! `/etc/openstack/clouds.yaml`; the first file that exists wins (`.yml`
//! works too). `secure.yaml` is looked up the same way (`OS_CLIENT_SECURE_FILE`
//! first) and its entry for the same cloud is merged over the clouds.yaml
//! entry, key by key. The YAML is parsed with `serde_yaml_ng`; the entry is
//! read leniently (ids written as bare numbers are taken as strings,
//! `verify`/`insecure` as booleans or boolean strings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::error::OpenStackError;
use super::settings::Secret;

/// One `clouds:` entry, after the secure.yaml merge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudEntry {
    /// `password`, `v3password`, `v3applicationcredential`, … (None = password).
    pub auth_type: Option<String>,
    pub auth: AuthSection,
    pub region_name: Option<String>,
    pub interface: Option<String>,
    pub cacert: Option<PathBuf>,
    /// `verify: false` or `insecure: true`.
    pub insecure: Option<bool>,
    /// `<service>_endpoint_override` keys by service type (`compute`,
    /// `block-storage`); may contain `%(project_id)s`.
    pub endpoint_overrides: BTreeMap<String, String>,
    /// Where the entry came from, for error messages.
    pub source: PathBuf,
}

/// The `auth:` block of an entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthSection {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    /// `domain_name`/`domain_id`: default for both user and project domain.
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
}

/// Where to look for the two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPaths {
    pub clouds: Vec<PathBuf>,
    pub secure: Vec<PathBuf>,
}

impl SearchPaths {
    /// The standard locations, from this process's environment.
    pub fn standard() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let env_file = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self::from_parts(env_file("OS_CLIENT_CONFIG_FILE"), env_file("OS_CLIENT_SECURE_FILE"), home.as_deref())
    }

    /// The standard locations for a given environment (pure, for tests).
    pub fn from_parts(config_file: Option<PathBuf>, secure_file: Option<PathBuf>, home: Option<&Path>) -> Self {
        let dirs: Vec<PathBuf> = [
            Some(PathBuf::from(".")),
            home.map(|h| h.join(".config/openstack")),
            Some(PathBuf::from("/etc/openstack")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let list = |first: Option<PathBuf>, stem: &str| {
            let mut out: Vec<PathBuf> = first.into_iter().collect();
            for dir in &dirs {
                out.push(dir.join(format!("{stem}.yaml")));
                out.push(dir.join(format!("{stem}.yml")));
            }
            out
        };
        SearchPaths { clouds: list(config_file, "clouds"), secure: list(secure_file, "secure") }
    }
}

/// Finds cloud `name` in the first clouds.yaml that exists, merged with
/// secure.yaml.
pub fn load_cloud(name: &str, paths: &SearchPaths) -> Result<CloudEntry, OpenStackError> {
    let Some(clouds_path) = paths.clouds.iter().find(|p| p.is_file()) else {
        return Err(OpenStackError::Config(format!(
            "cloud {name:?} is configured but no clouds.yaml was found (looked in {})",
            paths.clouds.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    };
    let clouds_text = read(clouds_path)?;
    let secure = match paths.secure.iter().find(|p| p.is_file()) {
        Some(path) => Some((path.clone(), read(path)?)),
        None => None,
    };
    let secure_ref = secure.as_ref().map(|(p, t)| (p.as_path(), t.as_str()));
    parse_cloud(name, clouds_path, &clouds_text, secure_ref)
}

fn read(path: &Path) -> Result<String, OpenStackError> {
    std::fs::read_to_string(path).map_err(|e| OpenStackError::CloudsFile { path: path.to_owned(), source: Box::new(e) })
}

fn parse_yaml(path: &Path, text: &str) -> Result<Value, OpenStackError> {
    serde_yaml_ng::from_str(text).map_err(|e| OpenStackError::CloudsFile { path: path.to_owned(), source: Box::new(e) })
}

/// Picks `name` from a clouds.yaml text and merges the secure.yaml entry of
/// the same name over it.
pub fn parse_cloud(
    name: &str,
    clouds_path: &Path,
    clouds_text: &str,
    secure: Option<(&Path, &str)>,
) -> Result<CloudEntry, OpenStackError> {
    let clouds = parse_yaml(clouds_path, clouds_text)?;
    let mut entry = cloud_entry(&clouds, name).cloned().ok_or_else(|| {
        let known = clouds
            .get("clouds")
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(scalar).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        OpenStackError::Config(format!(
            "cloud {name:?} is not in {} (clouds there: {})",
            clouds_path.display(),
            if known.is_empty() { "none".to_owned() } else { known }
        ))
    })?;
    if let Some((secure_path, secure_text)) = secure {
        let secure = parse_yaml(secure_path, secure_text)?;
        if let Some(over) = cloud_entry(&secure, name) {
            merge(&mut entry, over.clone());
        }
    }
    let Value::Mapping(map) = entry else {
        return Err(OpenStackError::Config(format!("cloud {name:?} in {} is not a mapping", clouds_path.display())));
    };
    Ok(to_entry(&map, clouds_path))
}

fn cloud_entry<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("clouds")?.get(name)
}

/// Deep merge: mappings merge key by key, anything else is replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A scalar as text (so `project_id: 123` is "123"); None for null, maps, lists.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar).filter(|s| !s.is_empty())
}

fn boolean(map: &Mapping, key: &str) -> Option<bool> {
    match map.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => crate::objects::metadata::parse_bool(s),
        _ => None,
    }
}

fn to_entry(map: &Mapping, source: &Path) -> CloudEntry {
    let empty = Mapping::new();
    let auth = map.get("auth").and_then(Value::as_mapping).unwrap_or(&empty);
    let first = |keys: &[&str]| keys.iter().find_map(|k| text(auth, k));
    let auth = AuthSection {
        auth_url: first(&["auth_url"]),
        username: first(&["username", "user_name"]),
        user_id: first(&["user_id"]),
        password: first(&["password"]).map(Secret::new),
        user_domain_name: first(&["user_domain_name"]),
        user_domain_id: first(&["user_domain_id"]),
        project_name: first(&["project_name", "tenant_name"]),
        project_id: first(&["project_id", "tenant_id"]),
        project_domain_name: first(&["project_domain_name"]),
        project_domain_id: first(&["project_domain_id"]),
        domain_name: first(&["domain_name"]),
        domain_id: first(&["domain_id"]),
        application_credential_id: first(&["application_credential_id"]),
        application_credential_name: first(&["application_credential_name"]),
        application_credential_secret: first(&["application_credential_secret"]).map(Secret::new),
    };
    // `verify: false` turns verification off and beats cacert; `insecure` is
    // the old reverse spelling.
    let insecure = match (boolean(map, "verify"), boolean(map, "insecure")) {
        (Some(verify), _) => Some(!verify),
        (None, insecure) => insecure,
    };
    let mut endpoint_overrides = BTreeMap::new();
    for (service_type, keys) in [
        ("compute", &["compute_endpoint_override", "compute_endpoint"][..]),
        (
            "block-storage",
            &[
                "block_storage_endpoint_override",
                "volumev3_endpoint_override",
                "volume_endpoint_override",
                "block_storage_endpoint",
                "volumev3_endpoint",
            ][..],
        ),
        ("identity", &["identity_endpoint_override"][..]),
    ] {
        if let Some(url) = keys.iter().find_map(|k| text(map, k)) {
            endpoint_overrides.insert(service_type.to_owned(), url);
        }
    }
    CloudEntry {
        auth_type: text(map, "auth_type"),
        auth,
        region_name: text(map, "region_name"),
        interface: text(map, "interface").or_else(|| text(map, "endpoint_type")),
        cacert: text(map, "cacert").map(PathBuf::from),
        insecure,
        endpoint_overrides,
        source: source.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CLOUDS: &str = r#"
clouds:
  emu:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: alice
      password: from-clouds
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
    cacert: /path/ca.pem
    block_storage_endpoint_override: http://127.0.0.1:8776/v3/%(project_id)s
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000
      application_credential_id: 423f19a4ac1e4f48bbb4180756e6eb6c
    verify: false
  numbers:
    auth:
      auth_url: http://k/v3
      username: bob
      password: 1234
      project_id: 987654
      tenant_name: legacy
    insecure: "true"
"#;

    const SECURE: &str = r#"
clouds:
  emu:
    auth:
      password: from-secure
  appcred:
    auth:
      application_credential_secret: rEaqvJka48mpv
"#;

    fn parse(name: &str, secure: Option<&str>) -> Result<CloudEntry, OpenStackError> {
        parse_cloud(name, Path::new("clouds.yaml"), CLOUDS, secure.map(|s| (Path::new("secure.yaml"), s)))
    }

    #[test]
    fn password_entry_with_secure_merge() {
        let e = parse("emu", Some(SECURE)).unwrap();
        assert_eq!(e.auth.auth_url.as_deref(), Some("http://127.0.0.1:5000/v3"));
        assert_eq!(e.auth.username.as_deref(), Some("alice"));
        assert_eq!(e.auth.password.as_ref().map(Secret::expose), Some("from-secure"));
        assert_eq!(e.auth.project_name.as_deref(), Some("demo"));
        assert_eq!(e.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(e.interface.as_deref(), Some("internal"));
        assert_eq!(e.cacert, Some(PathBuf::from("/path/ca.pem")));
        assert_eq!(e.insecure, None);
        assert_eq!(
            e.endpoint_overrides.get("block-storage").map(String::as_str),
            Some("http://127.0.0.1:8776/v3/%(project_id)s")
        );
        let plain = parse("emu", None).unwrap();
        assert_eq!(plain.auth.password.as_ref().map(Secret::expose), Some("from-clouds"));
    }

    #[test]
    fn app_credential_entry_takes_its_secret_from_secure_yaml() {
        let e = parse("appcred", Some(SECURE)).unwrap();
        assert_eq!(e.auth_type.as_deref(), Some("v3applicationcredential"));
        assert_eq!(e.auth.application_credential_id.as_deref(), Some("423f19a4ac1e4f48bbb4180756e6eb6c"));
        assert_eq!(e.auth.application_credential_secret.as_ref().map(Secret::expose), Some("rEaqvJka48mpv"));
        assert_eq!(e.insecure, Some(true));
    }

    #[test]
    fn numbers_aliases_and_string_booleans() {
        let e = parse("numbers", None).unwrap();
        assert_eq!(e.auth.password.as_ref().map(Secret::expose), Some("1234"));
        assert_eq!(e.auth.project_id.as_deref(), Some("987654"));
        assert_eq!(e.auth.project_name.as_deref(), Some("legacy"));
        assert_eq!(e.insecure, Some(true));
    }

    #[test]
    fn unknown_cloud_names_the_known_ones_and_bad_yaml_names_the_file() {
        let err = parse("nope", None).unwrap_err().to_string();
        assert!(err.contains("\"nope\"") && err.contains("emu, appcred, numbers"), "{err}");
        let err = parse_cloud("emu", Path::new("/x/clouds.yaml"), "clouds: [unclosed", None).unwrap_err();
        assert!(err.to_string().contains("/x/clouds.yaml"), "{err}");
    }

    #[test]
    fn deep_merge_replaces_scalars_and_merges_maps() {
        let mut base: Value = serde_yaml_ng::from_str("a: {b: 1, c: 2}\nd: [1]").unwrap();
        merge(&mut base, serde_yaml_ng::from_str("a: {c: 3, e: 4}\nd: [2]").unwrap());
        let want: Value = serde_yaml_ng::from_str("a: {b: 1, c: 3, e: 4}\nd: [2]").unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn search_order_is_env_file_then_cwd_home_etc_and_files_are_found() {
        let p = SearchPaths::from_parts(Some("/env/c.yaml".into()), None, Some(Path::new("/home/u")));
        let shown: Vec<String> = p.clouds.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/env/c.yaml",
                "./clouds.yaml",
                "./clouds.yml",
                "/home/u/.config/openstack/clouds.yaml",
                "/home/u/.config/openstack/clouds.yml",
                "/etc/openstack/clouds.yaml",
                "/etc/openstack/clouds.yml"
            ]
        );
        assert_eq!(p.secure[0], PathBuf::from("./secure.yaml"));

        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        let secure = dir.path().join("secure.yaml");
        std::fs::write(&clouds, CLOUDS).unwrap();
        std::fs::write(&secure, SECURE).unwrap();
        let paths = SearchPaths { clouds: vec![dir.path().join("missing.yaml"), clouds], secure: vec![secure] };
        let e = load_cloud("emu", &paths).unwrap();
        assert_eq!(e.auth.password.as_ref().map(Secret::expose), Some("from-secure"));
        let none = SearchPaths { clouds: vec![dir.path().join("missing.yaml")], secure: vec![] };
        assert!(load_cloud("emu", &none).unwrap_err().to_string().contains("no clouds.yaml"));
    }
}

//! Finding a service: the token's catalog, URL templates, version documents
//! and microversions. Everything here is pure and unit tested; the requests
//! that fetch version documents live in `mod.rs`.

use std::fmt;

use super::error::OpenStackError;
use super::settings::Interface;

/// The services Staffeln calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceType {
    Identity,
    Compute,
    BlockStorage,
}

impl ServiceType {
    /// Catalog types accepted for this service, best first (os-service-types:
    /// `block-storage` is also published as `volumev3`, `block-store` and
    /// `volume`; `volumev2` is a different API and is not used).
    pub fn catalog_types(self) -> &'static [&'static str] {
        match self {
            ServiceType::Identity => &["identity"],
            ServiceType::Compute => &["compute"],
            ServiceType::BlockStorage => &["block-storage", "volumev3", "block-store", "volume"],
        }
    }

    pub fn as_str(self) -> &'static str {
        self.catalog_types()[0]
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One endpoint of a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub interface: String,
    pub region: Option<String>,
    pub url: String,
}

/// One service of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogService {
    pub service_type: String,
    pub endpoints: Vec<Endpoint>,
}

/// The catalog of one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub services: Vec<CatalogService>,
}

impl Catalog {
    /// The URL of `service` for `interface` (exact; `publicURL` spellings are
    /// normalised) and `region` (compared with `region_id`/`region`; `None`
    /// takes any region, preferring the first listed).
    pub fn url_for(
        &self,
        service: ServiceType,
        interface: Interface,
        region: Option<&str>,
    ) -> Result<&str, OpenStackError> {
        for wanted in service.catalog_types() {
            for entry in self.services.iter().filter(|s| s.service_type == *wanted) {
                let found = entry.endpoints.iter().find(|e| {
                    e.interface.parse::<Interface>().ok() == Some(interface)
                        && region.is_none_or(|r| e.region.as_deref() == Some(r))
                });
                if let Some(endpoint) = found {
                    return Ok(&endpoint.url);
                }
            }
        }
        Err(OpenStackError::NoEndpoint {
            service_type: service.as_str().to_owned(),
            interface: interface.as_str().to_owned(),
            region: region.map(str::to_owned),
        })
    }
}

/// Fills `%(project_id)s`, `$(project_id)s`, `%(tenant_id)s`, `$(tenant_id)s`
/// and `%(user_id)s` in an endpoint URL (overrides and legacy catalogs).
pub fn expand_url_template(template: &str, project_id: &str, user_id: &str) -> String {
    let mut url = template.to_owned();
    for key in ["project_id", "tenant_id"] {
        url = url.replace(&format!("%({key})s"), project_id).replace(&format!("$({key})s"), project_id);
    }
    url.replace("%(user_id)s", user_id).replace("$(user_id)s", user_id)
}

/// Splits an endpoint URL into its version root and the project id segment
/// that follows it, if any: `http://c:8776/v3/<pid>` → (`http://c:8776/v3`,
/// Some(pid)). A trailing slash is dropped.
pub fn split_project_segment<'a>(url: &'a str, project_id: &str) -> (&'a str, Option<&'a str>) {
    let url = url.trim_end_matches('/');
    match url.rsplit_once('/') {
        Some((root, last)) if !project_id.is_empty() && last == project_id => (root, Some(last)),
        _ => (url, None),
    }
}

/// The URL of the unversioned root of a service endpoint: everything before
/// the last path segment that looks like a version (`v3`, `v2.1`).
pub fn unversioned_root(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let segments: Vec<&str> = parsed.path_segments()?.collect();
    let pos = segments.iter().rposition(|s| is_version_segment(s))?;
    let prefix: Vec<&str> = segments[..pos].iter().copied().filter(|s| !s.is_empty()).collect();
    let mut root = parsed.clone();
    root.set_path(&if prefix.is_empty() { "/".to_owned() } else { format!("/{}/", prefix.join("/")) });
    root.set_query(None);
    Some(root.to_string())
}

fn is_version_segment(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty() && rest.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A microversion `X.Y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    pub major: u32,
    pub minor: u32,
}

impl Microversion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Microversion { major, minor }
    }

    /// `"3.64"` → 3.64; also `"v3.0"`. Empty or malformed → None.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let (major, minor) = s.split_once('.')?;
        Some(Microversion { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a version document says about one major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// `min_version`, when the service has microversions.
    pub min: Option<Microversion>,
    /// `max_version` or `version`, when the service has microversions.
    pub max: Option<Microversion>,
}

/// Picks the entry for `major` from a version document in any of the shapes
/// keystoneauth accepts: `{"version": {...}}`, `{"versions": [...]}` or
/// `{"versions": {"values": [...]}}`.
pub fn version_info(doc: &serde_json::Value, major: u32) -> Option<VersionInfo> {
    let entries: Vec<&serde_json::Value> = if let Some(v) = doc.get("version") {
        vec![v]
    } else {
        match doc.get("versions")? {
            serde_json::Value::Array(list) => list.iter().collect(),
            other => other.get("values")?.as_array()?.iter().collect(),
        }
    };
    let field = |e: &serde_json::Value, k: &str| e.get(k).and_then(|v| v.as_str()).and_then(Microversion::parse);
    entries
        .into_iter()
        .filter(|e| {
            e.get("id").and_then(|v| v.as_str()).and_then(Microversion::parse).is_some_and(|id| id.major == major)
        })
        // a major version may be listed twice (Nova's v2.0 and v2.1): take the one with microversions
        .max_by_key(|e| field(e, "max_version").or_else(|| field(e, "version")))
        .map(|e| VersionInfo {
            min: field(e, "min_version"),
            max: field(e, "max_version").or_else(|| field(e, "version")),
        })
}

/// The microversion to send: `preferred` if the service has it, else the
/// service's maximum as long as it is at least `required`.
pub fn negotiate(
    service: ServiceType,
    url: &str,
    info: &VersionInfo,
    required: Microversion,
    preferred: Microversion,
) -> Result<Microversion, OpenStackError> {
    let base = Microversion::new(required.major, if required.major == 2 { 1 } else { 0 });
    let max = info.max.unwrap_or(base);
    let min = info.min.unwrap_or(base);
    let chosen = preferred.min(max);
    if chosen < required {
        return Err(OpenStackError::TooOld {
            service: service.as_str().to_owned(),
            url: url.to_owned(),
            required: required.to_string(),
            max: max.to_string(),
        });
    }
    if chosen < min {
        return Err(OpenStackError::Config(format!(
            "{service} at {url} needs microversion {min} or later, Staffeln speaks up to {preferred}"
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ep(interface: &str, region: &str, url: &str) -> Endpoint {
        Endpoint { interface: interface.into(), region: Some(region.into()), url: url.into() }
    }

    fn catalog() -> Catalog {
        Catalog {
            services: vec![
                CatalogService {
                    service_type: "identity".into(),
                    endpoints: vec![
                        ep("public", "RegionOne", "http://ks:5000"),
                        ep("admin", "RegionOne", "http://ks:35357"),
                    ],
                },
                CatalogService {
                    service_type: "volume".into(),
                    endpoints: vec![ep("public", "RegionOne", "http://old:8776/v1/p")],
                },
                CatalogService {
                    service_type: "volumev3".into(),
                    endpoints: vec![
                        ep("public", "RegionOne", "http://c1:8776/v3/p"),
                        ep("internal", "RegionOne", "http://c1-int:8776/v3/p"),
                        ep("publicURL", "RegionTwo", "http://c2:8776/v3/p"),
                    ],
                },
                CatalogService {
                    service_type: "compute".into(),
                    endpoints: vec![
                        ep("public", "RegionTwo", "http://n2:8774/v2.1"),
                        ep("public", "RegionOne", "http://n1:8774/v2.1"),
                    ],
                },
            ],
        }
    }

    #[test]
    fn selection_by_type_alias_interface_and_region() {
        use Interface::*;
        use ServiceType::*;
        let c = catalog();
        let cases: &[(ServiceType, Interface, Option<&str>, Option<&str>)] = &[
            (BlockStorage, Public, Some("RegionOne"), Some("http://c1:8776/v3/p")), // volumev3 beats volume
            (BlockStorage, Internal, None, Some("http://c1-int:8776/v3/p")),
            (BlockStorage, Public, Some("RegionTwo"), Some("http://c2:8776/v3/p")), // publicURL normalised
            (BlockStorage, Admin, None, None),
            (Compute, Public, Some("RegionOne"), Some("http://n1:8774/v2.1")),
            (Compute, Public, None, Some("http://n2:8774/v2.1")), // first listed
            (Compute, Public, Some("RegionThree"), None),
            (Identity, Admin, None, Some("http://ks:35357")),
        ];
        for &(service, interface, region, want) in cases {
            let got = c.url_for(service, interface, region).ok();
            assert_eq!(got, want, "{service} {interface} {region:?}");
        }
        let err = c.url_for(Compute, Internal, Some("RegionOne")).unwrap_err().to_string();
        assert_eq!(err, "no compute endpoint with interface internal in region RegionOne in the service catalog");
    }

    #[test]
    fn block_storage_is_found_under_its_official_type_first() {
        let mut c = catalog();
        c.services.push(CatalogService {
            service_type: "block-storage".into(),
            endpoints: vec![ep("public", "RegionOne", "http://bs:8776/v3")],
        });
        assert_eq!(c.url_for(ServiceType::BlockStorage, Interface::Public, None).unwrap(), "http://bs:8776/v3");
    }

    #[test]
    fn url_templates_and_project_segments() {
        assert_eq!(expand_url_template("http://c:8776/v3/%(project_id)s", "abc", "u"), "http://c:8776/v3/abc");
        assert_eq!(expand_url_template("http://c:8776/v3/$(tenant_id)s", "abc", "u"), "http://c:8776/v3/abc");
        assert_eq!(expand_url_template("http://x/%(user_id)s/%(tenant_id)s", "p", "u"), "http://x/u/p");
        assert_eq!(split_project_segment("http://c:8776/v3/abc", "abc"), ("http://c:8776/v3", Some("abc")));
        assert_eq!(split_project_segment("http://c:8776/v3/abc/", "abc"), ("http://c:8776/v3", Some("abc")));
        assert_eq!(split_project_segment("http://c:8776/v3", "abc"), ("http://c:8776/v3", None));
        assert_eq!(split_project_segment("http://c:8776/v3/other", "abc"), ("http://c:8776/v3/other", None));
        assert_eq!(unversioned_root("http://c:8776/v3").as_deref(), Some("http://c:8776/"));
        assert_eq!(unversioned_root("http://lb/volume/v3").as_deref(), Some("http://lb/volume/"));
        assert_eq!(unversioned_root("http://n:8774/v2.1/").as_deref(), Some("http://n:8774/"));
        assert_eq!(unversioned_root("http://n:8774/compute"), None);
    }

    #[test]
    fn version_documents_in_every_shape() {
        let cinder: serde_json::Value = serde_json::from_str(
            r#"{"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.71", "min_version": "3.0",
                "links": [{"rel": "self", "href": "http://c:8776/v3/"}]}]}"#,
        )
        .unwrap();
        let info = version_info(&cinder, 3).unwrap();
        assert_eq!(info.max, Some(Microversion::new(3, 71)));
        assert_eq!(info.min, Some(Microversion::new(3, 0)));
        assert_eq!(version_info(&cinder, 2), None);

        let nova_root: serde_json::Value = serde_json::from_str(
            r#"{"versions": [{"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": ""},
                             {"id": "v2.1", "status": "CURRENT", "version": "2.104", "min_version": "2.1"}]}"#,
        )
        .unwrap();
        assert_eq!(version_info(&nova_root, 2).unwrap().max, Some(Microversion::new(2, 104)));
        let nova_v21: serde_json::Value =
            serde_json::from_str(r#"{"version": {"id": "v2.1", "version": "2.90", "min_version": "2.1"}}"#).unwrap();
        assert_eq!(version_info(&nova_v21, 2).unwrap().max, Some(Microversion::new(2, 90)));
        let keystone: serde_json::Value =
            serde_json::from_str(r#"{"versions": {"values": [{"id": "v3.14", "status": "stable"}]}}"#).unwrap();
        assert_eq!(version_info(&keystone, 3), Some(VersionInfo { min: None, max: None }));
    }

    #[test]
    fn negotiation_prefers_ours_accepts_older_and_refuses_too_old() {
        let mv = Microversion::new;
        let info = |min, max| VersionInfo { min: Some(min), max: Some(max) };
        let bs = ServiceType::BlockStorage;
        assert_eq!(negotiate(bs, "u", &info(mv(3, 0), mv(3, 71)), mv(3, 43), mv(3, 64)).unwrap(), mv(3, 64));
        assert_eq!(negotiate(bs, "u", &info(mv(3, 0), mv(3, 50)), mv(3, 43), mv(3, 64)).unwrap(), mv(3, 50));
        let err = negotiate(bs, "http://c/v3", &info(mv(3, 0), mv(3, 27)), mv(3, 43), mv(3, 64)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "block-storage at http://c/v3 supports microversions up to 3.27, Staffeln needs at least 3.43"
        );
        // no microversions advertised: the base version only
        let none = VersionInfo { min: None, max: None };
        assert!(negotiate(bs, "u", &none, mv(3, 43), mv(3, 64)).is_err());
        assert_eq!(negotiate(ServiceType::Compute, "u", &none, mv(2, 1), mv(2, 1)).unwrap(), mv(2, 1));
        assert!(negotiate(bs, "u", &info(mv(3, 70), mv(3, 71)), mv(3, 43), mv(3, 64)).is_err());
        assert_eq!(Microversion::parse("v3.0"), Some(mv(3, 0)));
        assert_eq!(Microversion::parse(""), None);
        assert!(mv(3, 9) < mv(3, 10));
    }
}

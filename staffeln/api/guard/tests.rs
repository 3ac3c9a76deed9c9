use super::*;

const ID: &str = "0b9a1f4e-6c3d-4b0e-9a59-5d3f8e1c2a10";
const OTHER: &str = "5c3f1b4a-8e2d-4f6a-9b1c-7d0e2f3a4b5c";

#[test]
fn trusted_callers_pass_and_only_positive_evidence_allows_anyone_else() {
    use CinderLookup as C;
    use DbLookup as D;
    use Marking::{Marked, Unmarked};
    use Trust::{Listed, ServiceUser, Untrusted};
    use Verdict::{Allow, Deny, Error};
    let f = |trust, cached, target, db, cinder| Facts { trust, cached, target, db, cinder };
    #[rustfmt::skip]
    let cases: &[(Facts, Verdict, Basis)] = &[
        // Staffeln's own deletions: whatever the backup, no lookup needed.
        (f(ServiceUser, false, Some(Marked), None, None), Allow, Basis::ServiceUser),
        (f(ServiceUser, true, None, None, None), Allow, Basis::ServiceUser),
        (f(ServiceUser, false, None, Some(D::Failed), None), Allow, Basis::ServiceUser),
        (f(Listed, false, Some(Marked), Some(D::Recorded), None), Allow, Basis::TrustedUser),
        // Anyone else, with oslo.policy's target (no Cinder call).
        (f(Untrusted, false, Some(Marked), None, None), Deny, Basis::Target),          // marked: no query needed
        (f(Untrusted, false, Some(Unmarked), Some(D::Recorded), None), Deny, Basis::Database), // metadata removed
        (f(Untrusted, false, Some(Unmarked), Some(D::TaskNamed), None), Deny, Basis::Database), // being made
        (f(Untrusted, false, Some(Unmarked), Some(D::Unknown), None), Allow, Basis::Target),    // the tenant's own
        (f(Untrusted, false, Some(Unmarked), Some(D::Failed), None), Error, Basis::Database),   // fail closed
        (f(Untrusted, false, Some(Marked), Some(D::Failed), None), Deny, Basis::Target),        // a refusal is safe
        (f(Untrusted, false, Some(Unmarked), None, None), Error, Basis::Database),              // not asked
        (f(Untrusted, true, Some(Unmarked), None, None), Deny, Basis::Cache),
        // Without a target: Cinder tells, within lookup_timeout.
        (f(Untrusted, false, None, Some(D::Recorded), None), Deny, Basis::Database),
        (f(Untrusted, false, None, Some(D::Unknown), Some(C::Marked)), Deny, Basis::Cinder),
        (f(Untrusted, false, None, Some(D::TaskNamed), Some(C::Unmarked)), Deny, Basis::Database),
        (f(Untrusted, false, None, Some(D::Unknown), Some(C::Unmarked)), Allow, Basis::Cinder),
        (f(Untrusted, false, None, Some(D::Unknown), Some(C::NotFound)), Allow, Basis::Cinder),
        (f(Untrusted, false, None, Some(D::Unknown), Some(C::Failed)), Error, Basis::Cinder),
        (f(Untrusted, false, None, Some(D::Unknown), None), Error, Basis::Cinder),
        (f(Untrusted, false, None, Some(D::Failed), Some(C::Unmarked)), Error, Basis::Database),
        (f(Untrusted, false, None, Some(D::Failed), Some(C::Marked)), Deny, Basis::Cinder),
        (f(Untrusted, false, None, None, None), Error, Basis::Database),
    ];
    for (facts, verdict, basis) in cases {
        assert_eq!(decide(facts), (*verdict, *basis), "{facts:?}");
    }
}

#[test]
fn lookups_happen_only_when_they_can_change_the_answer() {
    use Marking::{Marked, Unmarked};
    let mut f = Facts::new(Trust::ServiceUser, false, None);
    assert!(!f.needs_db() && !f.needs_cinder(), "Staffeln's own deletions need nothing");
    f = Facts::new(Trust::Untrusted, false, Some(Marked));
    assert!(!f.needs_db(), "a marked target refuses alone");
    f = Facts::new(Trust::Untrusted, true, Some(Unmarked));
    assert!(!f.needs_db(), "a backup remembered as automated");
    f = Facts::new(Trust::Untrusted, false, Some(Unmarked));
    assert!(f.needs_db());
    f.db = Some(DbLookup::Unknown);
    assert!(!f.needs_cinder(), "a target never leads to Cinder");
    f = Facts::new(Trust::Untrusted, false, None);
    f.db = Some(DbLookup::Unknown);
    assert!(f.needs_cinder(), "no target, no record");
    f.db = Some(DbLookup::Recorded);
    assert!(!f.needs_cinder());
    f.db = Some(DbLookup::Failed);
    assert!(!f.needs_cinder(), "Cinder alone cannot allow when the database failed");
}

#[test]
fn trust_comes_from_the_credentials_user() {
    let listed = vec!["second-deployment".to_owned()];
    assert_eq!(Trust::of(Some("svc"), Some("svc"), &listed), Trust::ServiceUser);
    assert_eq!(Trust::of(Some("second-deployment"), Some("svc"), &listed), Trust::Listed);
    assert_eq!(Trust::of(Some("second-deployment"), None, &listed), Trust::Listed);
    assert_eq!(Trust::of(Some("alice"), Some("svc"), &listed), Trust::Untrusted);
    assert_eq!(Trust::of(None, Some("svc"), &listed), Trust::Untrusted);
    assert_eq!(Trust::of(Some("svc"), None, &[]), Trust::Untrusted, "not known yet");
}

fn form(target: &str, credentials: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("rule", "\"backup:delete\"")
        .append_pair("target", target)
        .append_pair("credentials", credentials)
        .finish()
        .into_bytes()
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

#[test]
fn the_request_carries_the_backup_its_metadata_and_the_caller() {
    let target = format!(
        "{{\"id\": \"{ID}\", \"project_id\": \"p\", \"metadata\": {{\"__automated_backup\": \"True\", \
         \"__staffeln_task_id\": \"t-1\", \"n\": 3}}}}"
    );
    let creds = "{\"is_admin\": false, \"user_id\": \"u1\", \"project_id\": \"p\", \"roles\": [\"member\"]}";
    let req = parse_request(None, FORM, &form(&target, creds)).unwrap();
    assert_eq!(req.id.0, ID);
    assert_eq!(req.caller.as_deref(), Some("u1"));
    assert_eq!(req.marking(), Some(Marking::Marked));
    assert_eq!(req.task_id(), Some("t-1"));
    assert_eq!(req.metadata.as_ref().unwrap()["n"], "3");
    // The same as one JSON object.
    let json = format!("{{\"rule\": \"backup:delete\", \"target\": {target}, \"credentials\": {creds}}}");
    assert_eq!(parse_request(None, Some("application/json"), json.as_bytes()).unwrap(), req);
    // Unmarked metadata; no credentials user.
    let plain = format!("{{\"id\": \"{ID}\", \"metadata\": {{\"purpose\": \"x\", \"__automated_backup\": \"no\"}}}}");
    let req = parse_request(None, FORM, &form(&plain, "{\"user_id\": null}")).unwrap();
    assert_eq!((req.marking(), req.caller.as_deref(), req.task_id()), (Some(Marking::Unmarked), None, None));
    // A target without metadata, or no body: nothing is known about the backup.
    let bare = format!("{{\"id\": \"{ID}\"}}");
    assert_eq!(parse_request(None, FORM, &form(&bare, "{}")).unwrap().marking(), None);
    let q = format!("backup_id={ID}");
    let req = parse_request(Some(&q), None, b"").unwrap();
    assert_eq!((req.marking(), req.caller.as_deref()), (None, None));
    // Metadata of a target without id describes nothing.
    let nameless = "{\"metadata\": {\"__automated_backup\": \"True\"}}";
    assert_eq!(parse_request(Some(&q), FORM, &form(nameless, "{}")).unwrap().marking(), None);
}

#[test]
fn the_id_comes_from_the_query_or_the_target() {
    let q = format!("backup_id={ID}");
    assert_eq!(backup_id(Some(&q), None, b"").unwrap().0, ID);
    let body = form(&format!("{{\"id\": \"{ID}\", \"project_id\": \"p\", \"metadata\": {{}}}}"), "{}");
    assert_eq!(backup_id(None, FORM, &body).unwrap().0, ID);
    assert_eq!(backup_id(Some(&q), None, &body).unwrap().0, ID, "both, equal");
    let json = format!("{{\"rule\": \"backup:delete\", \"target\": {{\"id\": \"{ID}\"}}, \"credentials\": {{}}}}");
    assert_eq!(backup_id(None, Some("application/json"), json.as_bytes()).unwrap().0, ID);
    // Upper case is Cinder's id all the same.
    let upper = format!("backup_id={}", ID.to_uppercase());
    assert_eq!(backup_id(Some(&upper), None, b"").unwrap().0, ID);
    // Other query parameters and a target without id are fine.
    let q2 = format!("x=1&backup_id={ID}");
    assert_eq!(backup_id(Some(&q2), FORM, &form("{}", "{}")).unwrap().0, ID);
}

#[test]
fn bad_requests_are_refused_with_what_was_wrong() {
    let err = |q: Option<&str>, ct: Option<&str>, body: &[u8]| backup_id(q, ct, body).unwrap_err();
    assert_eq!(err(None, None, b""), IdError::Missing);
    assert_eq!(err(Some("backup_id"), None, b"").to_string(), "backup_id \"\" is not a backup id: it is empty");
    assert_eq!(err(Some(&format!("backup_id={ID}&backup_id={OTHER}")), None, b""), IdError::Repeated { count: 2 });
    // `&` in a target id injects a parameter (oslo.policy does not escape).
    let injected = format!("backup_id=x&backup_id={ID}");
    assert_eq!(err(Some(&injected), None, b""), IdError::Repeated { count: 2 });
    // `%41` arrives decoded; `#` cut the rest off: the target disagrees.
    let e = err(Some("backup_id=%41"), None, b"").to_string();
    assert!(e.contains("\"A\"") && e.contains("36 characters"), "{e}");
    let cut = &ID[..20];
    let body = form(&format!("{{\"id\": \"{cut}#{}\"}}", &ID[21..]), "{}");
    assert!(matches!(err(Some(&format!("backup_id={cut}")), None, &body), IdError::Malformed { .. }));
    let body = form(&format!("{{\"id\": \"{OTHER}\"}}"), "{}");
    assert_eq!(
        err(Some(&format!("backup_id={ID}")), None, &body),
        IdError::Mismatch { query: ID.into(), target: OTHER.into() }
    );
    // Very long ids are cut in the message.
    let long = format!("backup_id={}", "a".repeat(5000));
    let e = err(Some(&long), None, b"").to_string();
    assert!(e.len() < 200 && e.contains("5000 bytes"), "{e}");
    // Bodies.
    assert!(matches!(err(None, None, &form("{not json", "{}")), IdError::Body { field: "target", .. }));
    assert!(matches!(err(None, None, &form("[1]", "{}")), IdError::Body { field: "target", .. }));
    assert!(matches!(err(None, None, &form("{\"id\": 7}", "{}")), IdError::Malformed { .. }));
    let ok_target = format!("{{\"id\": \"{ID}\"}}");
    assert!(matches!(err(None, None, &form(&ok_target, "[]")), IdError::Body { field: "credentials", .. }));
    assert!(matches!(err(None, None, &form(&ok_target, "{x")), IdError::Body { field: "credentials", .. }));
    let bad_meta = format!("{{\"id\": \"{ID}\", \"metadata\": [\"__automated_backup\"]}}");
    assert!(matches!(err(None, None, &form(&bad_meta, "{}")), IdError::Body { field: "target", .. }));
    assert!(matches!(err(None, Some("application/json"), b"[]"), IdError::Body { .. }));
    assert_eq!(err(None, Some("text/plain"), b"x"), IdError::UnsupportedContentType("text/plain".into()));
    assert!(matches!(err(Some("backup_id=not-a-uuid-but-36-characters-long!!"), None, b""), IdError::Malformed { .. }));
}

//! Turning a [`Digest`] into mail bodies: the built-in askama templates
//! (`templates/digest.html`, `templates/digest.txt`, compiled in), or the
//! operator's Jinja2 `template_file` for the HTML part, rendered at run time
//! with minijinja. A broken operator template is logged and replaced by the
//! built-in one, so the digest still goes out.

use std::path::{Path, PathBuf};

use askama::Template;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context, value::Serde};
use tracing::warn;

use super::digest::Digest;

/// The built-in HTML part.
#[derive(Template)]
#[template(path = "digest.html")]
struct HtmlDigest<'a> {
    digest: &'a Digest,
}

/// The built-in plain-text part.
#[derive(Template)]
#[template(path = "digest.txt")]
struct TextDigest<'a> {
    digest: &'a Digest,
}

/// Why the operator template was not used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the digest template {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the digest template {} does not parse", .path.display())]
    Syntax {
        path: PathBuf,
        #[source]
        source: minijinja::Error,
    },
    #[error("the digest template {} failed to render", .path.display())]
    Render {
        path: PathBuf,
        #[source]
        source: minijinja::Error,
    },
}

/// The built-in templates failed (a bug, not an input problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot render the built-in digest template for {digest}")]
pub struct RenderError {
    pub digest: String,
    #[source]
    pub source: askama::Error,
}

/// The bodies of one digest mail.
#[derive(Debug)]
pub struct Rendered {
    pub html: String,
    pub text: String,
    /// Set when the operator template failed and the built-in HTML was used.
    pub fallback: Option<TemplateError>,
}

/// Renders `digest`: HTML from `template_file` when given and working, the
/// built-in HTML otherwise; the text part is always the built-in one.
pub fn render(digest: &Digest, template_file: Option<&Path>) -> Result<Rendered, RenderError> {
    let text = TextDigest { digest }.render().map_err(|source| RenderError { digest: digest.describe(), source })?;
    let mut fallback = None;
    if let Some(path) = template_file {
        match render_operator_template(digest, path) {
            Ok(html) => return Ok(Rendered { html, text, fallback }),
            Err(err) => {
                warn!(
                    notify.template = %path.display(),
                    "{}: using the built-in digest template for {}",
                    error_chain(&err),
                    digest.describe()
                );
                fallback = Some(err);
            }
        }
    }
    let html = render_builtin_html(digest)?;
    Ok(Rendered { html, text, fallback })
}

/// The built-in HTML part alone.
pub fn render_builtin_html(digest: &Digest) -> Result<String, RenderError> {
    HtmlDigest { digest }.render().map_err(|source| RenderError { digest: digest.describe(), source })
}

/// Renders the operator's Jinja2 file with the one variable `digest`, HTML
/// auto-escaping on; printing an undefined variable is an error (testing one
/// with `if` or `is defined` is not). The file is read on
/// each call, so an edit applies to the next digest without a restart.
pub fn render_operator_template(digest: &Digest, path: &Path) -> Result<String, TemplateError> {
    let source =
        std::fs::read_to_string(path).map_err(|source| TemplateError::Read { path: path.to_owned(), source })?;
    let mut env = Environment::new();
    // Must be set before the template is added: the mode is fixed at compile time.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    let name = path.display().to_string();
    env.add_template_owned(name.clone(), source)
        .map_err(|source| TemplateError::Syntax { path: path.to_owned(), source })?;
    let template = env.get_template(&name).map_err(|source| TemplateError::Syntax { path: path.to_owned(), source })?;
    template
        .render(context! { digest => Serde(digest) })
        .map_err(|source| TemplateError::Render { path: path.to_owned(), source })
}

pub use crate::errors::chain as error_chain;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::digest::{BackupKind, BackupResult, ProjectBackups, Quota, SkippedVolume, project_digest};
    use chrono::TimeZone;

    fn hostile_digest() -> Digest {
        let project = ProjectBackups {
            project_id: "p1".into(),
            project_name: "demo <b>".into(),
            results: vec![BackupResult {
                server_id: "s1".into(),
                server_name: "<script>alert(1)</script>".into(),
                volume_id: "v1".into(),
                volume_name: "a & \"b\"".into(),
                backup_id: None,
                backup_name: "bk".into(),
                kind: BackupKind::Incremental,
                size_gb: 3,
                success: false,
                in_progress: false,
                fail_reason: Some("<img src=x onerror=alert(1)>".into()),
            }],
            skipped: vec![SkippedVolume {
                server_id: "s2".into(),
                server_name: "web".into(),
                volume_id: "v2".into(),
                volume_name: "<i>tmp</i>".into(),
                reason: "skip <now>".into(),
            }],
            unstamped: vec![],
            backups_quota: Some(Quota { limit: 10, in_use: 5, reserved: 0 }),
            gigabytes_quota: None,
            member_emails: vec![],
            assurance: None,
        };
        project_digest(&project, chrono::Utc.with_ymd_and_hms(2026, 11, 25, 16, 14, 48).unwrap())
    }

    #[test]
    fn the_built_in_html_escapes_user_text_and_the_text_part_keeps_it() {
        let rendered = render(&hostile_digest(), None).unwrap();
        for raw in ["<script>", "<img", "<b>", "<i>", "<now>", "a & "] {
            assert!(!rendered.html.contains(raw), "{raw} unescaped in:\n{}", rendered.html);
        }
        assert!(rendered.html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(rendered.html.contains("a &#38; &#34;b&#34;"));
        assert!(rendered.html.contains("class=\"success red\""));
        assert!(rendered.html.contains("class=\"num usage yellow\""));
        assert!(rendered.html.contains("class=\"num usage unknown\""));
        assert!(rendered.text.contains("server <script>alert(1)</script>"), "{}", rendered.text);
        assert!(rendered.text.contains("reason: <img src=x onerror=alert(1)>"), "{}", rendered.text);
        assert!(
            rendered.text.contains("backup bk (not created), incremental, 3 GB, success: false"),
            "{}",
            rendered.text
        );
        assert!(rendered.fallback.is_none());
    }

    #[test]
    fn an_operator_template_is_escaped_whatever_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digest.j2");
        std::fs::write(&path, "{% for p in digest.projects %}{% for v in p.volumes %}[{{ v.server }}|{{ v.fail_reason }}]{% endfor %}{% endfor %}").unwrap();
        let rendered = render(&hostile_digest(), Some(&path)).unwrap();
        assert!(rendered.fallback.is_none(), "{:?}", rendered.fallback);
        assert_eq!(rendered.html, "[&lt;script&gt;alert(1)&lt;&#x2f;script&gt;|&lt;img src=x onerror=alert(1)&gt;]");
    }

    #[test]
    fn errors_in_the_operator_template_fall_back_to_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("syntax.html", Some("{% if %}"), "does not parse"),
            ("render.html", Some("{{ digest.nope.deeper }}"), "failed to render"),
            ("undefined.html", Some("{{ nothing }}"), "failed to render"),
            ("missing.html", None, "cannot read"),
        ];
        for (name, body, why) in cases {
            let path = dir.path().join(name);
            if let Some(body) = body {
                std::fs::write(&path, body).unwrap();
            }
            let rendered = render(&hostile_digest(), Some(&path)).unwrap();
            let err = rendered.fallback.as_ref().unwrap_or_else(|| panic!("{name}: no fallback"));
            let line = error_chain(err);
            assert!(line.contains(why) && line.contains(name), "{name}: {line}");
            assert_eq!(rendered.html, render_builtin_html(&hostile_digest()).unwrap(), "{name}");
        }
    }

    #[test]
    fn the_documented_example_template_renders() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/notify-template.md")).unwrap();
        let start = doc.find("```jinja\n").unwrap() + "```jinja\n".len();
        let end = start + doc[start..].find("```").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.html.j2");
        std::fs::write(&path, &doc[start..end]).unwrap();
        let rendered = render(&hostile_digest(), Some(&path)).unwrap();
        assert!(rendered.fallback.is_none(), "{:?}", rendered.fallback.map(|e| error_chain(&e)));
        assert!(rendered.html.contains("<li class=\"yellow\">Backups: 5 of 10 (50 %)</li>"), "{}", rendered.html);
        assert!(rendered.html.contains("<li class=\"unknown\">Backup gigabytes"), "{}", rendered.html);
        assert!(rendered.html.contains("Skipped: &lt;i&gt;tmp&lt;&#x2f;i&gt; (skip &lt;now&gt;)"), "{}", rendered.html);
    }

    #[test]
    fn the_digest_opens_with_rpo_compliance_and_shows_quota_warnings_and_drills() {
        let mut digest = hostile_digest();
        digest.projects[0].assurance = Some(crate::notify::digest::ProjectAssurance {
            within: 3,
            total: 4,
            misses: vec![crate::notify::digest::RpoMiss { volume: "<v>".into(), reason: "no good backup yet".into() }],
            quota_warning: Some("the backups quota is projected to run out on 2026-12-05 (in 3 days)".into()),
            drills: vec!["backup b1 of volume v1: passed in 35 s".into()],
        });
        let rendered = render(&digest, None).unwrap();
        let text = &rendered.text;
        let project = text.find("== Project").unwrap();
        let rpo = text.find("3 of 4 volumes within RPO").expect(text);
        let counts = project + text[project..].find("succeeded,").unwrap();
        assert!(project < rpo && rpo < counts, "the RPO line opens the project section:\n{text}");
        assert!(text.contains("out of RPO: <v>: no good backup yet"), "{text}");
        assert!(text.contains("Quota warning: the backups quota is projected to run out on 2026-12-05"), "{text}");
        assert!(text.contains("restore drill: backup b1 of volume v1: passed in 35 s"), "{text}");
        assert!(rendered.html.contains("<strong>3 of 4 volumes within RPO</strong>"), "{}", rendered.html);
        assert!(rendered.html.contains("<li>&#60;v&#62;: no good backup yet</li>"), "{}", rendered.html);
        assert!(rendered.html.contains("class=\"quota-warning\""));
        let plain = render(&hostile_digest(), None).unwrap();
        assert!(!plain.text.contains("within RPO") && !plain.html.contains("within RPO"));
    }

    #[test]
    fn the_operator_digest_of_a_large_cloud_fits_a_mail_servers_limit() {
        // 500 projects of 20 volumes, one failure each: ids as long as
        // OpenStack's UUIDs.
        let uuid = |kind: &str, n: usize| format!("{kind:0>8}-0000-4000-8000-{n:012}");
        let projects: Vec<ProjectBackups> = (0..500)
            .map(|p| ProjectBackups {
                project_id: uuid("p", p),
                project_name: format!("project-{p}"),
                results: (0..20)
                    .map(|v| {
                        let n = p * 20 + v;
                        BackupResult {
                            server_id: uuid("s", n / 2),
                            server_name: format!("server-{}", n / 2),
                            volume_id: uuid("v", n),
                            volume_name: format!("volume-{n}"),
                            backup_id: Some(uuid("b", n)),
                            backup_name: format!("volume-{n}-2026-11-25T16:14:48"),
                            kind: BackupKind::Incremental,
                            size_gb: 100,
                            success: v != 0,
                            in_progress: false,
                            fail_reason: (v == 0).then(|| "Cinder answered 413: backup quota exceeded".into()),
                        }
                    })
                    .collect(),
                skipped: vec![],
                unstamped: vec![],
                backups_quota: Some(Quota { limit: 100, in_use: 40, reserved: 0 }),
                gigabytes_quota: Some(Quota { limit: 10_000, in_use: 4_000, reserved: 0 }),
                member_emails: vec![],
                assurance: None,
            })
            .collect();
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 16, 14, 48).unwrap();
        let size = |d: &Digest| {
            let r = render(d, None).unwrap();
            r.html.len() + r.text.len()
        };
        let operator = crate::notify::digest::operator_digest(&projects, now);
        let all_projects: usize = projects.iter().map(|p| size(&project_digest(p, now))).sum();
        let operator_size = size(&operator);
        eprintln!("operator digest {operator_size} bytes; the 500 project digests {all_projects} bytes");
        // Base64 makes 4 bytes of 3: a stock Postfix takes up to 10 MB.
        assert!(operator_size * 4 / 3 < 2_000_000, "{operator_size} bytes");
        assert!(all_projects * 4 / 3 > 10_000_000, "listing every volume would not fit: {all_projects} bytes");
        let text = render(&operator, None).unwrap().text;
        assert_eq!(text.matches("[FAIL]").count(), 500);
        assert_eq!(text.matches("19 more, listed in the project's own digest.").count(), 500);
    }

    #[test]
    fn error_chains_do_not_repeat_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: inner")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }
}

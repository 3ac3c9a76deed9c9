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

/// `error: cause: cause`, for one log line. A cause whose text the line
/// already ends with is not repeated (lettre's errors print their source).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

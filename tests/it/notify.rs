//! Backup digests against a real SMTP server: aiosmtpd from the test venv on
//! a loopback port (plain, AUTH, STARTTLS, implicit TLS), each message saved
//! raw and parsed back with Python's `email` package.

use crate::support::{TestCerts, test_certs};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use regex::Regex;
use serde::Deserialize;
use staffeln::conf::Secret;
use staffeln::notify::{
    BackupKind, BackupResult, DeliveryMethod, MailError, Mailer, NotifySettings, ProjectBackups, Quota, SkippedVolume,
    SmtpSecurity, TemplateError,
};

use crate::support::{error_chain, python, run_python};

const SMTP_USER: &str = "staffeln@example.com";
const SMTP_PASSWORD: &str = "pw-9f3a-never-shown";

/// aiosmtpd with a handler that saves each envelope as `<n>.json`
/// (mail_from, rcpt_tos, whether the session was authenticated and
/// encrypted, the raw message in base64). Prints `READY <port>`, runs until
/// stdin closes. Modes: plain, auth, starttls (STARTTLS required, then
/// AUTH required), tls (implicit TLS).
const SINK: &str = r#"
import base64, json, logging, os, socket, ssl, sys, warnings
# Quiet: AUTH without TLS is on purpose here, and so are the failed handshakes.
warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
USER, PASSWORD = sys.argv[6:8] if len(sys.argv) > 7 else ("", "")

class Sink:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.n += 1
        path = os.path.join(out, "%04d.json" % Sink.n)
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        record = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                  "authenticated": bool(session.authenticated), "tls": tls,
                  "data": base64.b64encode(envelope.original_content).decode()}
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK saved"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
          and auth_data.password.decode() == PASSWORD)
    # handled=False: let aiosmtpd answer 535 on failure.
    return AuthResult(success=ok, handled=False)

if port == 0:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
kwargs = {}
if mode in ("starttls", "tls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
if mode == "auth":
    kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
elif mode == "starttls":
    kwargs.update(tls_context=ctx, require_starttls=True, authenticator=authenticator, auth_required=True)
elif mode == "tls":
    kwargs.update(ssl_context=ctx)
controller = Controller(Sink(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("READY", port, flush=True)
sys.stdin.read()
controller.stop()
"#;

/// Parses every saved message with the stdlib `email` package.
const PARSE: &str = r#"
import base64, email, json, os, sys
from email import policy
out = []
d = sys.argv[1]
for name in sorted(f for f in os.listdir(d) if f.endswith(".json")):
    with open(os.path.join(d, name)) as f:
        rec = json.load(f)
    msg = email.message_from_bytes(base64.b64decode(rec["data"]), policy=policy.default)
    parts = [{"content_type": p.get_content_type(), "body": p.get_content()}
             for p in msg.walk() if not p.is_multipart()]
    out.append({"mail_from": rec["mail_from"], "rcpt_tos": rec["rcpt_tos"],
                "authenticated": rec["authenticated"], "tls": rec["tls"],
                "subject": str(msg["subject"]), "from": str(msg["from"]), "to": str(msg["to"]),
                "message_id": msg["message-id"] and str(msg["message-id"]),
                "content_type": msg.get_content_type(), "parts": parts})
print(json.dumps(out))
"#;

#[derive(Debug, Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub authenticated: bool,
    pub tls: bool,
    pub subject: String,
    pub message_id: Option<String>,
    pub from: String,
    pub to: String,
    pub content_type: String,
    pub parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
pub struct Part {
    pub content_type: String,
    pub body: String,
}

impl Mail {
    pub fn part(&self, content_type: &str) -> &str {
        let found = self.parts.iter().find(|p| p.content_type == content_type);
        &found.unwrap_or_else(|| panic!("no {content_type} part in {self:#?}")).body
    }
    pub fn html(&self) -> &str {
        self.part("text/html")
    }
    pub fn text(&self) -> &str {
        self.part("text/plain")
    }
}

#[derive(Clone, Copy)]
pub enum Mode {
    Plain,
    Auth,
    Starttls,
    Tls,
}

/// One aiosmtpd process, killed on drop, saving into its own directory.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start(mode: Mode, certs: Option<&TestCerts>) -> SmtpSink {
        SmtpSink::start_on(mode, 0, certs)
    }

    fn start_on(mode: Mode, port: u16, certs: Option<&TestCerts>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let mode_name = match mode {
            Mode::Plain => "plain",
            Mode::Auth => "auth",
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
        };
        let mut cmd = Command::new(python());
        cmd.arg("-c").arg(SINK).arg(mode_name).arg(port.to_string()).arg(dir.path());
        match certs {
            Some(c) => cmd.arg(&c.cert).arg(&c.key),
            None => cmd.arg("").arg(""),
        };
        cmd.arg(SMTP_USER).arg(SMTP_PASSWORD);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd from the test venv: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = match line.trim().strip_prefix("READY ") {
            Some(p) => p.parse().unwrap(),
            None => {
                let _ = child.kill();
                panic!("aiosmtpd did not start (is aiosmtpd in the test venv?); it said {line:?}")
            }
        };
        SmtpSink { child, port, dir }
    }

    pub fn mails(&self) -> Vec<Mail> {
        let out = run_python(PARSE, &[self.dir.path().to_str().unwrap()]);
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 16, 14, 48).single().unwrap()
}

fn result(server: &str, volume: &str, kind: BackupKind, fail_reason: Option<&str>) -> BackupResult {
    BackupResult {
        server_id: format!("srv-{}", volume.len()),
        server_name: server.to_owned(),
        volume_id: format!("vol-{volume}-id").replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ""),
        volume_name: volume.to_owned(),
        backup_id: fail_reason.is_none().then(|| format!("bk-{}", volume.len())),
        backup_name: format!("staffeln-{}", volume.len()),
        kind,
        size_gb: 20,
        success: fail_reason.is_none(),
        in_progress: false,
        fail_reason: fail_reason.map(str::to_owned),
    }
}

/// demo: quotas at 49 % and 50 %, a success (with hostile names), a failure
/// and a skipped volume; other: quotas at 80 % and 81 %, one success.
fn projects() -> Vec<ProjectBackups> {
    vec![
        ProjectBackups {
            project_id: "p-demo".into(),
            project_name: "demo".into(),
            results: vec![
                result("<script>alert(1)</script>", "data & \"logs\"", BackupKind::Full, None),
                result("db", "pgdata", BackupKind::Incremental, Some("backup error: <quota exceeded>")),
            ],
            skipped: vec![SkippedVolume {
                server_id: "srv-x".into(),
                server_name: "web".into(),
                volume_id: "vol-scratch".into(),
                volume_name: "scratch".into(),
                reason: "metadata __staffeln_skip is true".into(),
            }],
            unstamped: vec![],
            backups_quota: Some(Quota { limit: 100, in_use: 49, reserved: 0 }),
            gigabytes_quota: Some(Quota { limit: 1000, in_use: 500, reserved: 0 }),
            member_emails: vec![],
            assurance: None,
        },
        ProjectBackups {
            project_id: "p-other".into(),
            project_name: "other".into(),
            results: vec![result("app", "root", BackupKind::Full, None)],
            skipped: vec![],
            unstamped: vec![],
            backups_quota: Some(Quota { limit: 100, in_use: 80, reserved: 0 }),
            gigabytes_quota: Some(Quota { limit: 100, in_use: 81, reserved: 0 }),
            member_emails: vec![],
            assurance: None,
        },
        ProjectBackups {
            project_id: "p-idle".into(),
            project_name: "idle".into(),
            results: vec![],
            skipped: vec![],
            unstamped: vec![],
            backups_quota: None,
            gigabytes_quota: None,
            member_emails: vec![],
            assurance: None,
        },
    ]
}

fn settings(sink_port: u16) -> NotifySettings {
    NotifySettings {
        project_receiver_domain: Some("corp.example".into()),
        admin_receiver: vec!["root@example.com".into()],
        sender_email: Some(SMTP_USER.into()),
        smtp_server_domain: "127.0.0.1".into(),
        smtp_server_port: sink_port,
        smtp_security: SmtpSecurity::None,
        smtp_timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

/// (css class, shown text) of every quota usage cell, in order.
fn usage_cells(html: &str) -> Vec<(String, String)> {
    let re = Regex::new(r#"class="num usage (\w+)"[^>]*>([^<]*)<"#).unwrap();
    re.captures_iter(html).map(|c| (c[1].to_owned(), c[2].to_owned())).collect()
}

/// (css class, shown text) of every success cell, in order.
fn success_cells(html: &str) -> Vec<(String, String)> {
    let re = Regex::new(r#"class="success (\w+)"[^>]*>([^<]*)<"#).unwrap();
    re.captures_iter(html).map(|c| (c[1].to_owned(), c[2].to_owned())).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Captures every log record (all levels) while alive on this thread.
struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn start() -> LogCapture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = BufWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        LogCapture { buf, _guard: tracing::subscriber::set_default(subscriber) }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn each_project_and_the_operator_receive_one_digest() {
    let sink = SmtpSink::start(Mode::Plain, None);
    let mailer = Mailer::new(settings(sink.port)).unwrap();
    let outcome = mailer.send_cycle(&projects(), now()).await;

    // One entry per project with backups; the idle project gets nothing.
    let ids: Vec<&str> = outcome.projects.iter().map(|p| p.project_id.as_str()).collect();
    assert_eq!(ids, ["p-demo", "p-other"]);
    for p in &outcome.projects {
        let delivery = p.result.as_ref().unwrap_or_else(|e| panic!("{}: {}", p.project_id, error_chain(e)));
        assert!(delivery.template_fallback.is_none());
    }
    let operator = outcome.operator.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(operator.method, DeliveryMethod::Mailed { to: vec!["root@example.com".into()] });

    let mails = sink.mails();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let [demo, other, admin] = &mails[..] else { unreachable!() };

    // Receivers and headers.
    assert_eq!(demo.rcpt_tos, ["demo@corp.example"]);
    assert_eq!(other.rcpt_tos, ["other@corp.example"]);
    assert_eq!(admin.rcpt_tos, ["root@example.com"]);
    assert_eq!(demo.to, "demo@corp.example");
    assert_eq!(demo.mail_from, SMTP_USER);
    assert_eq!(demo.from, "Staffeln <staffeln@example.com>");
    assert!(!demo.authenticated && !demo.tls);
    assert_eq!(demo.subject, "Staffeln backups for project demo: 1 succeeded, 1 failed, 1 skipped");
    assert_eq!(other.subject, "Staffeln backups for project other: 1 succeeded, 0 failed, 0 skipped");
    assert_eq!(admin.subject, "Staffeln backups for 2 projects: 2 succeeded, 1 failed, 1 skipped");

    // Both parts, as alternatives.
    for mail in &mails {
        assert_eq!(mail.content_type, "multipart/alternative");
        let types: Vec<&str> = mail.parts.iter().map(|p| p.content_type.as_str()).collect();
        assert_eq!(types, ["text/plain", "text/html"]);
    }

    // Quota colours: green below 50 %, yellow 50–80 % inclusive, red above.
    assert_eq!(usage_cells(demo.html()), pairs(&[("green", "49 %"), ("yellow", "50 %")]));
    assert_eq!(usage_cells(other.html()), pairs(&[("yellow", "80 %"), ("red", "81 %")]));
    assert_eq!(
        usage_cells(admin.html()),
        pairs(&[("green", "49 %"), ("yellow", "50 %"), ("yellow", "80 %"), ("red", "81 %")])
    );
    assert!(demo.html().contains("500 GB") && demo.html().contains("1000 GB"));

    // Success colours, failures first, the reason shown (escaped).
    assert_eq!(success_cells(demo.html()), pairs(&[("red", "false"), ("green", "true")]));
    assert!(demo.html().contains("backup error: &#60;quota exceeded&#62;"), "{}", demo.html());
    assert!(demo.html().contains("incremental") && demo.html().contains("full"));
    assert!(demo.html().contains("metadata __staffeln_skip is true"));
    assert!(demo.text().contains("reason: backup error: <quota exceeded>"), "{}", demo.text());
    assert!(demo.text().contains("volume scratch (vol-scratch): metadata __staffeln_skip is true"));
    assert!(demo.text().contains("Backup time: 2026-11-25 16:14:48 UTC"));

    // User-supplied names are escaped in HTML, plain in text.
    assert!(!demo.html().contains("<script>"), "{}", demo.html());
    assert!(demo.html().contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(demo.html().contains("data &#38; &#34;logs&#34;"), "{}", demo.html());
    assert!(demo.text().contains("server <script>alert(1)</script>"));
}

#[tokio::test]
async fn the_login_uses_sender_email_and_the_password_never_shows() {
    let logs = LogCapture::start();
    let sink = SmtpSink::start(Mode::Auth, None);
    let mut s = settings(sink.port);
    s.sender_pwd = Some(Secret::new(SMTP_PASSWORD));
    let outcome = Mailer::new(s.clone()).unwrap().send_cycle(&projects()[..1], now()).await;
    assert!(outcome.projects[0].result.is_ok(), "{:?}", outcome.projects[0].result);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.authenticated));

    let wrong = "wrong-pw-4c1d";
    s.sender_pwd = Some(Secret::new(wrong));
    let outcome = Mailer::new(s.clone()).unwrap().send_cycle(&projects()[..1], now()).await;
    let err = outcome.projects[0].result.as_ref().unwrap_err();
    let chain = error_chain(err);
    assert!(matches!(err, MailError::Send { .. }), "{chain}");
    assert!(chain.contains("p-demo") && chain.contains(&format!("127.0.0.1:{}", sink.port)), "{chain}");
    let debug = format!("{err:?} {s:?}");
    let log = logs.text();
    for shown in [&chain, &debug, &log] {
        assert!(!shown.contains(SMTP_PASSWORD) && !shown.contains(wrong), "password leaked: {shown}");
    }
    assert!(log.contains("stay unreported"), "{log}");
    assert_eq!(sink.mails().len(), 2, "nothing more arrived");
}

#[tokio::test]
async fn starttls_verifies_the_server_against_smtp_ca_file() {
    let certs = test_certs();
    let sink = SmtpSink::start(Mode::Starttls, Some(&certs));
    let mut s = settings(sink.port);
    s.smtp_security = SmtpSecurity::Starttls;
    s.sender_pwd = Some(Secret::new(SMTP_PASSWORD));
    s.admin_receiver.clear();

    // Without the private CA, the server's certificate is not trusted.
    let untrusted = Mailer::new(s.clone()).unwrap().send_cycle(&projects()[..1], now()).await;
    let err = untrusted.projects[0].result.as_ref().unwrap_err();
    assert!(matches!(err, MailError::Send { .. }), "{}", error_chain(err));
    assert!(sink.mails().is_empty());

    s.smtp_ca_file = Some(certs.ca.clone());
    let trusted = Mailer::new(s).unwrap().send_cycle(&projects()[..1], now()).await;
    assert!(trusted.projects[0].result.is_ok(), "{:?}", trusted.projects[0].result);
    assert!(trusted.operator.is_none());
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls && mails[0].authenticated);
}

#[tokio::test]
async fn implicit_tls_sends_encrypted_from_the_first_byte() {
    let certs = test_certs();
    let sink = SmtpSink::start(Mode::Tls, Some(&certs));
    let mut s = settings(sink.port);
    s.smtp_security = SmtpSecurity::Tls;
    s.smtp_ca_file = Some(certs.ca.clone());
    let outcome = Mailer::new(s).unwrap().send_cycle(&projects()[..1], now()).await;
    assert!(outcome.projects[0].result.is_ok(), "{:?}", outcome.projects[0].result);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.tls));
}

#[tokio::test]
async fn an_unreachable_server_fails_the_digest_and_a_later_attempt_delivers_it() {
    let port = closed_port();
    let mailer = Mailer::new(settings(port)).unwrap();
    let first = mailer.send_cycle(&projects(), now()).await;
    assert_eq!(first.projects.len(), 2);
    for p in &first.projects {
        let err = p.result.as_ref().unwrap_err();
        let chain = error_chain(err);
        assert!(matches!(err, MailError::Send { .. }), "{chain}");
        assert!(chain.contains(&p.project_id) && chain.contains(&format!("127.0.0.1:{port}")), "{chain}");
    }
    assert!(first.operator.as_ref().unwrap().is_err());

    // The same mailer, once the server is up: the kept results go out.
    let sink = SmtpSink::start_on(Mode::Plain, port, None);
    let second = mailer.send_cycle(&projects(), now()).await;
    assert!(second.projects.iter().all(|p| p.result.is_ok()), "{second:?}");
    assert_eq!(sink.mails().len(), 3);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts the TCP connection (the kernel does) but never greets.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut s = settings(port);
    s.admin_receiver.clear();
    s.smtp_timeout = Duration::from_secs(1);
    let outcome = Mailer::new(s).unwrap().send_cycle(&projects()[..1], now()).await;
    match &outcome.projects[0].result {
        Err(err @ MailError::Timeout { digest, .. }) => {
            assert_eq!(digest, "project demo (p-demo)");
            assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    drop(silent);
}

#[tokio::test]
async fn a_project_without_receivers_fails_alone() {
    let sink = SmtpSink::start(Mode::Plain, None);
    let mut s = settings(sink.port);
    s.project_receiver_domain = None; // fall back to members' addresses
    s.admin_receiver.clear();
    let mut input = projects();
    input[0].member_emails = vec!["alice@example.com".into(), "not-an-address".into(), "bob@example.com".into()];
    let outcome = Mailer::new(s).unwrap().send_cycle(&input, now()).await;
    assert!(outcome.projects[0].result.is_ok());
    match &outcome.projects[1].result {
        Err(MailError::NoRecipients { digest, .. }) => assert_eq!(digest, "project other (p-other)"),
        other => panic!("expected NoRecipients, got {other:?}"),
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_tos, ["alice@example.com", "bob@example.com"]);
}

#[tokio::test]
async fn a_broken_operator_template_falls_back_to_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = dir.path().join("syntax.html.j2");
    std::fs::write(&syntax, "<p>{% for p in digest.projects %}{{ p.project_name }}</p>").unwrap();
    let render = dir.path().join("render.html.j2");
    std::fs::write(&render, "<p>{{ digest.no_such_field.deeper }}</p>").unwrap();
    let missing = dir.path().join("missing.html.j2");
    let good = dir.path().join("good.html.j2");
    std::fs::write(
        &good,
        "<h1>CUSTOM {{ digest.subject }}</h1>\
         {% for p in digest.projects %}{% for v in p.volumes %}<i class=\"{{ v.band }}\">{{ v.server }}</i>{% endfor %}\
         {% for q in p.quotas %}<b class=\"{{ q.band }}\">{{ q.percent_text }}</b>{% endfor %}{% endfor %}",
    )
    .unwrap();

    let cases: [(&Path, &str); 3] =
        [(&syntax, "does not parse"), (&render, "failed to render"), (&missing, "cannot read the digest template")];
    for (template, why) in cases {
        let logs = LogCapture::start();
        let sink = SmtpSink::start(Mode::Plain, None);
        let mut s = settings(sink.port);
        s.admin_receiver.clear();
        s.template_file = Some(template.to_owned());
        let outcome = Mailer::new(s).unwrap().send_cycle(&projects()[..1], now()).await;
        let delivery = outcome.projects[0].result.as_ref().unwrap();
        let fallback = delivery.template_fallback.as_ref().unwrap_or_else(|| panic!("{why}: no fallback"));
        assert!(error_chain(fallback).contains(why), "{}", error_chain(fallback));
        match (why, fallback) {
            ("does not parse", TemplateError::Syntax { path, .. })
            | ("failed to render", TemplateError::Render { path, .. })
            | ("cannot read the digest template", TemplateError::Read { path, .. }) => assert_eq!(path, template),
            _ => panic!("{why}: wrong kind {fallback:?}"),
        }
        let mails = sink.mails();
        assert_eq!(mails.len(), 1, "{why}: the digest still goes out");
        assert_eq!(usage_cells(mails[0].html()).len(), 2, "{why}: built-in HTML");
        let log = logs.text();
        assert!(log.contains(why) && log.contains("using the built-in digest template"), "{why}: {log}");
        assert!(log.contains(&template.display().to_string()), "{log}");
    }

    // A working operator template is used, with the same data, auto-escaped.
    let sink = SmtpSink::start(Mode::Plain, None);
    let mut s = settings(sink.port);
    s.admin_receiver.clear();
    s.template_file = Some(good);
    let outcome = Mailer::new(s).unwrap().send_cycle(&projects()[..1], now()).await;
    assert!(outcome.projects[0].result.as_ref().unwrap().template_fallback.is_none());
    let mails = sink.mails();
    let html = mails[0].html();
    assert!(html.starts_with("<h1>CUSTOM Staffeln backups for project demo: 1 succeeded"), "{html}");
    assert!(html.contains("<i class=\"red\">db</i><i class=\"green\">&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("<b class=\"green\">49 %</b><b class=\"yellow\">50 %</b>"), "{html}");
    assert!(mails[0].text().contains("Quota usage:"), "the text part stays built-in");
}

#[tokio::test]
async fn without_a_sender_the_digest_goes_to_the_log_and_report_dir() {
    let logs = LogCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let s = NotifySettings {
        sender_email: None,
        report_dir: Some(reports.clone()),
        admin_receiver: vec!["root@example.com".into()],
        smtp_server_port: closed_port(), // never contacted
        ..Default::default()
    };
    let outcome = Mailer::new(s).unwrap().send_cycle(&projects(), now()).await;
    let demo_file = reports.join("p-demo-20261125T161448Z.html");
    let other_file = reports.join("p-other-20261125T161448Z.html");
    let admin_file = reports.join("all-projects-20261125T161448Z.html");
    assert_eq!(
        outcome.projects[0].result.as_ref().unwrap().method,
        DeliveryMethod::Recorded { file: Some(demo_file.clone()) }
    );
    assert_eq!(
        outcome.projects[1].result.as_ref().unwrap().method,
        DeliveryMethod::Recorded { file: Some(other_file.clone()) }
    );
    assert_eq!(outcome.operator.unwrap().unwrap().method, DeliveryMethod::Recorded { file: Some(admin_file.clone()) });
    let mut names: Vec<String> =
        std::fs::read_dir(&reports).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        ["all-projects-20261125T161448Z.html", "p-demo-20261125T161448Z.html", "p-other-20261125T161448Z.html"]
    );
    let html = std::fs::read_to_string(&demo_file).unwrap();
    assert_eq!(usage_cells(&html), pairs(&[("green", "49 %"), ("yellow", "50 %")]));
    let log = logs.text();
    assert!(log.contains("sender_email is unset"), "{log}");
    assert!(log.contains("Staffeln backups for project demo: 1 succeeded, 1 failed, 1 skipped"), "{log}");
    assert!(log.contains(&demo_file.display().to_string()), "{log}");

    // Without report_dir, the log alone.
    let outcome = Mailer::new(NotifySettings::default()).unwrap().send_cycle(&projects()[..1], now()).await;
    assert_eq!(outcome.projects[0].result.as_ref().unwrap().method, DeliveryMethod::Recorded { file: None });
}

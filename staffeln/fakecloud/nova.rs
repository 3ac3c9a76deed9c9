//! Nova v2.1 (placeholder).
use super::http::{Req, Resp, Service, fault};
use super::server::Urls;
use super::state::World;

pub(crate) fn handle(_w: &mut World, _urls: &Urls, _req: &Req, _segs: &[&str]) -> Resp {
    fault(Service::Compute, 404, "Not Found")
}

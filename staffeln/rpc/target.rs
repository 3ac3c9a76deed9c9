//! [`Target`]: where a call or cast goes, or what a server listens to.

/// Where a call or cast goes, or what a server listens to (oslo's `Target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub topic: String,
    /// A client sends to `<topic>.<server>`; a server listens on it. A
    /// server needs one.
    pub server: Option<String>,
    /// Overrides `control_exchange`.
    pub exchange: Option<String>,
    pub namespace: Option<String>,
}

impl Target {
    pub fn new(topic: &str) -> Target {
        Target { topic: topic.to_owned(), server: None, exchange: None, namespace: None }
    }

    pub fn with_server(mut self, server: &str) -> Target {
        self.server = Some(server.to_owned());
        self
    }

    pub fn with_exchange(mut self, exchange: &str) -> Target {
        self.exchange = Some(exchange.to_owned());
        self
    }

    pub fn with_namespace(mut self, namespace: &str) -> Target {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// `T` or `T.S`.
    pub fn routing_key(&self) -> String {
        match &self.server {
            Some(server) => format!("{}.{server}", self.topic),
            None => self.topic.clone(),
        }
    }

    pub(crate) fn exchange_or<'a>(&'a self, control_exchange: &'a str) -> &'a str {
        self.exchange.as_deref().unwrap_or(control_exchange)
    }
}

//! One helper every room uses at its edge: an error and its causes on one line.

/// `error: cause: cause`. A cause whose text the line already holds is not
/// repeated (lettre, lapin and reqwest print their source in their own text).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot send the digest")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("connection failed: refused")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_once() {
        let err = Outer(std::io::Error::other("refused"));
        assert_eq!(super::chain(&err), "cannot send the digest: refused");
        let err = Repeats(std::io::Error::other("refused"));
        assert_eq!(super::chain(&err), "connection failed: refused");
    }
}

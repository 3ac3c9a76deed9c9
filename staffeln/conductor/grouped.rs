//! Grouping a long listing (every backup of a cloud) by a key without spare
//! room: a list grown one push at a time holds room for four, and most
//! volumes have a backup or two, so grouping 10,000 backups into per-volume
//! lists as they are read held three times the memory the backups need.

/// `items` grouped by `key`, in key order, each group in `items`' order and
/// exactly as long as it needs to be.
pub(crate) fn grouped<T, K: Ord + Clone>(mut items: Vec<T>, key: impl Fn(&T) -> &K) -> Vec<(K, Vec<T>)> {
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let mut groups = Vec::new();
    let mut rest = items.into_iter().peekable();
    while let Some(first) = rest.next() {
        let k = key(&first).clone();
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|t| *key(t) == k) {
            group.push(next);
        }
        group.shrink_to_fit();
        groups.push((k, group));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_listing_order_and_hold_no_spare_room() {
        let listed = vec![("vb", 1), ("va", 2), ("vb", 3), ("vc", 4), ("vb", 5), ("va", 6)];
        let groups = grouped(listed, |(volume, _)| volume);
        let seen: Vec<(&str, Vec<i32>)> =
            groups.iter().map(|(k, g)| (*k, g.iter().map(|(_, n)| *n).collect())).collect();
        assert_eq!(seen, [("va", vec![2, 6]), ("vb", vec![1, 3, 5]), ("vc", vec![4])]);
        assert!(groups.iter().all(|(_, g)| g.capacity() == g.len()));
        assert!(grouped(Vec::<(&str, i32)>::new(), |(k, _)| k).is_empty());
    }
}

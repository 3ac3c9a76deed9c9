//! The house's shape, checked from the sources: inside a room no files
//! import each other in a circle, and rooms depend on each other only in the
//! directions DEVELOPERS.md draws.
//!
//! The sources are read as text (no compiler involved): comments, string
//! and character literals and `#[cfg(test)]` items are blanked, then every
//! `use` tree and every path that starts with `crate`, `super`, `self`, a
//! child module or a name a `use` brought in is resolved to the file that
//! defines it. A name a module re-exports (`pub use child::Thing`) resolves to
//! the file that defines it, so importing through a room's front door is an
//! edge to the file behind it. Naming a module (`use crate::db::{self}`) is
//! no edge; using something in it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo_root;

type ModPath = Vec<String>;

/// One source file: its module path and its code, blanked as above.
struct File {
    module: ModPath,
    code: String,
}

/// One crate's modules, with every module path prefixed by `prefix` (the
/// emulator's crate is checked as the room `fakecloud`).
struct Crate {
    prefix: ModPath,
    files: Vec<File>,
}

/// Replaces comments, string, byte-string and character literals by blanks
/// (newlines kept), so that nothing in them reads as code.
fn blank(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && ident(b[i - 1]);
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push(b'\n');
                    }
                    i += 1;
                }
            }
        } else if !prev_ident
            && (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r')))
            && raw_start(&b[i..]).is_some()
        {
            let (skip, hashes) = raw_start(&b[i..]).unwrap_or((0, 0));
            i += skip;
            let mut end = vec![b'"'];
            end.extend(std::iter::repeat_n(b'#', hashes));
            while i < b.len() && !b[i..].starts_with(&end) {
                if b[i] == b'\n' {
                    out.push(b'\n');
                }
                i += 1;
            }
            i += end.len();
            out.extend_from_slice(b"\"\"");
        } else if c == b'"' || (c == b'b' && !prev_ident && b.get(i + 1) == Some(&b'"')) {
            i += if c == b'b' { 2 } else { 1 };
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\n' {
                    out.push(b'\n');
                }
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let rest = &b[i + 1..];
            let len = if rest.first() == Some(&b'\\') {
                rest.iter().skip(1).position(|&x| x == b'\'').map(|p| p + 2)
            } else {
                let ch = std::str::from_utf8(&b[i + 1..(i + 5).min(b.len())])
                    .ok()
                    .or_else(|| std::str::from_utf8(&b[i + 1..(i + 4).min(b.len())]).ok())
                    .or_else(|| std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())]).ok())
                    .or_else(|| std::str::from_utf8(&b[i + 1..(i + 2).min(b.len())]).ok())
                    .and_then(|s| s.chars().next());
                ch.map(char::len_utf8).filter(|n| rest.get(*n) == Some(&b'\'')).map(|n| n + 1)
            };
            match len {
                Some(n) => {
                    i += n + 1;
                    out.extend_from_slice(b"' '");
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `r"`, `r#"`, `br##"`…: the length of the opening and its number of `#`.
fn raw_start(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = if b.first() == Some(&b'b') { 1 } else { 0 };
    if b.get(i) != Some(&b'r') {
        return None;
    }
    i += 1;
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    i += hashes;
    (b.get(i) == Some(&b'"')).then_some((i + 1, hashes))
}

/// The end (exclusive) of the item starting at `from`: its `;` or its
/// balanced `{…}` block, whichever comes first.
fn item_end(code: &str, from: usize) -> usize {
    let b = code.as_bytes();
    let mut i = from;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b';' if depth == 0 => return i + 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The code without its `#[cfg(test)]` items, and the names of the child
/// modules declared under `#[cfg(test)]` (their files are tests as well).
fn without_tests(code: &str) -> (String, Vec<String>) {
    let mut out = code.to_owned();
    let mut test_children = Vec::new();
    while let Some(at) = out.find("#[cfg(test)]") {
        let end = item_end(&out, at + "#[cfg(test)]".len());
        let item = &out[at..end];
        if item.ends_with(';')
            && let Some(name) = item.split_whitespace().skip_while(|w| *w != "mod").nth(1)
        {
            test_children.push(name.trim_end_matches(';').to_owned());
        }
        out.replace_range(at..end, "");
    }
    (out, test_children)
}

/// Splits `a, b::{c, d}` at its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// One leaf of a `use` tree: its full path and the name it brings in
/// (`None` for a glob).
struct UseLeaf {
    path: Vec<String>,
    name: Option<String>,
    public: bool,
}

fn expand_use(tree: &str, prefix: &[String], public: bool, out: &mut Vec<UseLeaf>) {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut prefix = prefix.to_vec();
        prefix.extend(head);
        for part in split_top(inner) {
            expand_use(part, &prefix, public, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim().to_owned())),
        None => (tree, None),
    };
    let mut segs: Vec<String> = prefix.to_vec();
    segs.extend(path.split("::").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
    if segs.last().is_some_and(|s| s == "*") {
        segs.pop();
        out.push(UseLeaf { path: segs, name: None, public });
        return;
    }
    if segs.last().is_some_and(|s| s == "self") {
        segs.pop();
    }
    let name = alias.or_else(|| segs.last().cloned()).filter(|n| n != "_");
    out.push(UseLeaf { path: segs, name, public });
}

/// Every `use` of the code (leaves), and the code with the `use` items cut out.
fn uses(code: &str) -> (Vec<UseLeaf>, String) {
    let mut leaves = Vec::new();
    let mut rest = String::with_capacity(code.len());
    let b = code.as_bytes();
    let mut i = 0;
    let word_at = |i: usize, w: &str| {
        code[i..].starts_with(w)
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && b.get(i + w.len()).is_some_and(|c| c.is_ascii_whitespace())
    };
    while i < b.len() {
        if word_at(i, "use") {
            let end = code[i..].find(';').map_or(b.len(), |e| i + e);
            let before = rest.trim_end();
            let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
            expand_use(&code[i + 3..end], &[], public, &mut leaves);
            i = end + 1;
        } else {
            rest.push(b[i] as char);
            i += 1;
        }
    }
    (leaves, rest)
}

/// Paths written in code: `a::b::c` sequences (turbofish and generics cut).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut i = 0;
    let id = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if id(b[i]) && (i == 0 || !(id(b[i - 1]) || b[i - 1] == b':')) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let start = j;
                while j < b.len() && id(b[j]) {
                    j += 1;
                }
                segs.push(code[start..j].to_owned());
                let mut k = j;
                while k < b.len() && b[k] == b' ' {
                    k += 1;
                }
                if code[k..].starts_with("::") {
                    k += 2;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < b.len() && id(b[k]) {
                        j = k;
                        continue;
                    }
                }
                break;
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules of the crate whose root is `src/<root>`; `skip` names
/// top-level directories that are not modules of it (binaries).
fn load_crate(src: &Path, root: &str, prefix: &[&str], skip: &[&str]) -> Crate {
    let mut paths = Vec::new();
    rs_files(src, &mut paths);
    let mut files = Vec::new();
    let mut test_files = BTreeSet::new();
    for path in paths {
        let rel = path.strip_prefix(src).unwrap();
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if skip.contains(&parts[0].as_str()) {
            continue;
        }
        let mut module: ModPath = prefix.iter().map(|s| (*s).to_owned()).collect();
        if parts != [root] {
            let (last, dirs) = parts.split_last().unwrap();
            module.extend(dirs.iter().cloned());
            if last != "mod.rs" {
                module.push(last.trim_end_matches(".rs").to_owned());
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (code, tests) = without_tests(&blank(&text));
        for child in tests {
            let mut m = module.clone();
            m.push(child);
            test_files.insert(m);
        }
        files.push(File { module, code });
    }
    let is_test = |m: &ModPath| test_files.iter().any(|t| m.starts_with(t));
    files.retain(|f| !is_test(&f.module));
    Crate { prefix: prefix.iter().map(|s| (*s).to_owned()).collect(), files }
}

/// Each file's dependencies on other files of its crate, by module path.
fn file_edges(krate: &Crate) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let modules: BTreeSet<ModPath> = krate.files.iter().map(|f| f.module.clone()).collect();
    let mut parsed: BTreeMap<ModPath, (Vec<UseLeaf>, String)> = BTreeMap::new();
    for f in &krate.files {
        parsed.insert(f.module.clone(), uses(&f.code));
    }
    // A path as written in `module` → an absolute module path inside the
    // crate, or None (another crate).
    let absolute = |module: &ModPath, segs: &[String]| -> Option<Vec<String>> {
        let mut base: Vec<String>;
        let mut rest = segs;
        match segs.first().map(String::as_str) {
            Some("crate") => {
                base = krate.prefix.clone();
                rest = &segs[1..];
            }
            Some("self") => {
                base = module.clone();
                rest = &segs[1..];
            }
            Some("super") => {
                base = module.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = module.clone();
                child.push(first.to_owned());
                if modules.contains(&child) {
                    base = module.clone();
                } else {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    };
    // The module whose file defines what `path` names (following
    // re-exports), and whether `path` is that module itself.
    fn target(
        path: &[String],
        modules: &BTreeSet<ModPath>,
        reexports: &BTreeMap<ModPath, BTreeMap<String, Vec<String>>>,
        depth: usize,
    ) -> Option<(ModPath, bool)> {
        let mut n = path.len();
        while n > 0 && !modules.contains(&path[..n].to_vec()) {
            n -= 1;
        }
        if n == 0 && !modules.contains(&Vec::new()) {
            return None;
        }
        let module = path[..n].to_vec();
        if n == path.len() {
            return Some((module, true));
        }
        if depth < 8
            && let Some(next) = reexports.get(&module).and_then(|r| r.get(&path[n]))
        {
            let mut p = next.clone();
            p.extend(path[n + 1..].iter().cloned());
            return target(&p, modules, reexports, depth + 1);
        }
        Some((module, false))
    }
    // Per module: the names its `use` items bring in (absolute paths), and
    // which of them it re-exports.
    let mut imports: BTreeMap<ModPath, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut reexports: BTreeMap<ModPath, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (module, (leaves, _)) in &parsed {
        for leaf in leaves {
            let (Some(name), Some(abs)) = (&leaf.name, absolute(module, &leaf.path)) else { continue };
            imports.entry(module.clone()).or_default().insert(name.clone(), abs.clone());
            if leaf.public {
                reexports.entry(module.clone()).or_default().insert(name.clone(), abs);
            }
        }
    }
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, (leaves, rest)) in &parsed {
        let mut wanted: Vec<Vec<String>> = Vec::new();
        for leaf in leaves {
            if let Some(abs) = absolute(module, &leaf.path) {
                wanted.push(abs);
            }
        }
        for segs in inline_paths(rest) {
            let alias = imports.get(module).and_then(|i| i.get(&segs[0]));
            let abs = match alias {
                Some(full) => {
                    let mut p = full.clone();
                    p.extend(segs[1..].iter().cloned());
                    Some(p)
                }
                None => absolute(module, &segs),
            };
            if let Some(abs) = abs {
                wanted.push(abs);
            }
        }
        let out = edges.entry(module.clone()).or_default();
        for abs in wanted {
            if let Some((to, is_module)) = target(&abs, &modules, &reexports, 0)
                && !is_module
                && &to != module
            {
                out.insert(to);
            }
        }
    }
    edges
}

/// Every cycle among `nodes` (one per strongly connected component with
/// more than one file), each shown as a path that closes.
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Tarjan's strongly connected components.
    struct Walk<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    // Show each component as one closed path through it.
    walk.found
        .into_iter()
        .map(|component| {
            let inside: BTreeSet<&ModPath> = component.iter().collect();
            let start = component.iter().min().unwrap().clone();
            let mut path = vec![start.clone()];
            let mut seen = BTreeSet::from([start.clone()]);
            let mut at = start.clone();
            loop {
                let next =
                    edges[&at].iter().filter(|w| inside.contains(w)).find(|w| !seen.contains(*w) || **w == start);
                let Some(next) = next.or_else(|| edges[&at].iter().find(|w| inside.contains(w))) else { break };
                path.push(next.clone());
                if *next == start || !seen.insert(next.clone()) {
                    break;
                }
                at = next.clone();
            }
            path
        })
        .collect()
}

/// Whether `to` can be reached from `from`.
fn reaches(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>, from: &ModPath, to: &ModPath) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(m) = todo.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m) {
            todo.extend(edges.get(m).into_iter().flatten());
        }
    }
    false
}

fn show(m: &ModPath) -> String {
    if m.is_empty() { "lib".to_owned() } else { m.join("::") }
}

fn production() -> Crate {
    load_crate(&repo_root().join("staffeln"), "lib.rs", &[], &["cmd"])
}

/// The emulator's crate (`fakecloud/`), checked as one room.
fn emulator() -> Crate {
    load_crate(&repo_root().join("fakecloud/src"), "lib.rs", &["fakecloud"], &["main.rs"])
}

/// Edges between files of the same room (the first module segment).
fn room_local(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    edges
        .iter()
        .map(|(from, to)| {
            let local = to.iter().filter(|t| t.first() == from.first() && !t.is_empty()).cloned().collect();
            (from.clone(), local)
        })
        .collect()
}

#[test]
fn no_files_of_one_room_import_each_other_in_a_circle() {
    let mut found = Vec::new();
    for krate in [production(), emulator()] {
        let edges = room_local(&file_edges(&krate));
        for cycle in cycles(&edges) {
            let mut members: Vec<&ModPath> =
                edges.keys().filter(|m| reaches(&edges, m, &cycle[0]) && reaches(&edges, &cycle[0], m)).collect();
            members.sort();
            let inside: Vec<String> = members
                .iter()
                .map(|m| {
                    let to: Vec<String> = edges[*m].iter().filter(|t| members.contains(t)).map(show).collect();
                    format!("  {} → {}", show(m), to.join(", "))
                })
                .collect();
            found.push(format!("{}\n{}", cycle.iter().map(show).collect::<Vec<_>>().join(" → "), inside.join("\n")));
        }
    }
    assert!(found.is_empty(), "files of one room import each other in a circle:\n{}", found.join("\n"));
}

/// Which rooms each room may use (DEVELOPERS.md). `cmd/` holds the
/// binaries, above everything.
const ROOMS: &[(&str, &[&str])] = &[
    ("service", &["conf", "errors"]),
    ("api", &["db", "openstack", "objects", "conf", "service", "errors"]),
    ("conductor", &["db", "openstack", "notify", "rpc", "objects", "conf", "service", "errors"]),
    ("notify", &["rpc", "objects", "conf", "errors"]),
    ("db", &["objects", "conf", "errors"]),
    ("openstack", &["objects", "conf", "errors"]),
    ("rpc", &["objects", "conf", "errors"]),
    ("ceph", &["conf"]),
    ("objects", &[]),
    ("conf", &["errors"]),
    ("errors", &[]),
];

/// The uses of one room by another that `map` does not allow, and the
/// rooms found.
fn against_the_map(
    edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    map: &[(&str, &[&str])],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut wrong = BTreeSet::new();
    let mut rooms = BTreeSet::new();
    for (from, to) in edges {
        let Some(room) = from.first() else { continue };
        rooms.insert(room.clone());
        let Some((_, allowed)) = map.iter().find(|(r, _)| r == room) else {
            wrong.insert(format!("room {room} is not in the map"));
            continue;
        };
        for t in to {
            let Some(other) = t.first() else { continue };
            if other != room && !allowed.contains(&other.as_str()) {
                wrong.insert(format!("{} uses {} ({room} → {other})", show(from), show(t)));
            }
        }
    }
    (wrong, rooms)
}

#[test]
fn rooms_depend_on_each_other_only_downwards() {
    let (wrong, rooms) = against_the_map(&file_edges(&production()), ROOMS);
    assert!(
        wrong.is_empty(),
        "rooms depend on each other against the map of DEVELOPERS.md (ROOMS here):\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
    let listed: BTreeSet<String> = ROOMS.iter().map(|(r, _)| (*r).to_owned()).collect();
    assert_eq!(rooms, listed, "every room of staffeln/ is in the map, and only those");
}

/// The emulator and the production crate meet only through the API spec:
/// the emulator depends on no Staffeln crate and names none, and the
/// production library holds neither the emulator nor the benchmarks.
#[test]
fn the_emulator_and_the_benchmarks_stay_out_of_the_production_crate() {
    let root = repo_root();
    let manifest = std::fs::read_to_string(root.join("fakecloud/Cargo.toml")).unwrap();
    let deps: Vec<&str> = manifest
        .lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split('=').next().map(str::trim))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect();
    assert!(!deps.is_empty(), "no [dependencies] found in fakecloud/Cargo.toml");
    assert!(!deps.iter().any(|d| d.starts_with("staffeln")), "the emulator depends on {deps:?}");
    for file in emulator().files.iter().map(|f| &f.code) {
        assert!(!file.contains("staffeln::"), "the emulator names the staffeln crate");
    }
    let lib = std::fs::read_to_string(root.join("staffeln/lib.rs")).unwrap();
    assert!(!lib.contains("mod fakecloud") && !lib.contains("mod bench"), "staffeln/lib.rs holds the emulator");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("name = \"staffeln-bench-"), "the benchmarks are binaries of the production package");
    assert!(!root.join("staffeln/fakecloud").exists() && !root.join("staffeln/cmd/fakecloud.rs").exists());
}

#[test]
fn the_checker_sees_a_circle_and_a_wrong_direction() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("room")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod room;\npub mod other;\n").unwrap();
    std::fs::write(
        src.join("room/mod.rs"),
        "//! use crate::room::b::Nothing;\nmod a;\nmod b;\npub use a::Thing;\n#[cfg(test)]\nmod tests;\n",
    )
    .unwrap();
    std::fs::write(src.join("room/a.rs"), "use super::b::helper;\npub struct Thing;\nfn f() { helper() }\n").unwrap();
    // b reaches Thing through the room's front door: an edge to a.rs.
    std::fs::write(src.join("room/b.rs"), "pub fn helper() { let _ = super::Thing; let _s = \"crate::other::x\"; }\n")
        .unwrap();
    std::fs::write(src.join("room/tests.rs"), "use super::b::helper;\nuse crate::other::X;\n").unwrap();
    std::fs::write(src.join("other.rs"), "use crate::room::{self};\npub struct X;\nfn g() { room::helper2() }\n")
        .unwrap();
    let krate = load_crate(src, "lib.rs", &[], &[]);
    let edges = file_edges(&krate);
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(edges[&m("room::a")], BTreeSet::from([m("room::b")]));
    assert_eq!(edges[&m("room::b")], BTreeSet::from([m("room::a")]), "through the re-export; nothing from the string");
    assert_eq!(edges[&m("room")], BTreeSet::from([m("room::a")]));
    assert_eq!(edges[&m("other")], BTreeSet::from([m("room")]), "naming a module is no edge, using it is");
    assert!(!edges.contains_key(&m("room::tests")), "test modules are left out");
    let found = cycles(&room_local(&edges));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].first(), found[0].last());
    assert_eq!(found[0].len(), 3);
    let (wrong, rooms) = against_the_map(&edges, &[("room", &[]), ("other", &[])]);
    assert_eq!(rooms, BTreeSet::from(["other".to_owned(), "room".to_owned()]));
    assert_eq!(wrong, BTreeSet::from(["other uses room (other → room)".to_owned()]));
    let (wrong, _) = against_the_map(&edges, &[("room", &[]), ("other", &["room"])]);
    assert!(wrong.is_empty(), "{wrong:?}");
}

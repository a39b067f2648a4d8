//! The map in ARCHITECTURE.md, checked: the crate graph runs one way, no two source files import
//! each other (directly or around a loop), the layers of `drills` import only downwards, and no
//! file or function outgrows its size limit. The test reads `Cargo.toml`s, `use` lines and
//! paths as text; it builds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("drills sits in the workspace")
        .to_path_buf()
}

/// The workspace's crates: name used in code, folder of its sources.
const CRATES: &[(&str, &str)] = &[
    ("raftdrill_wire", "target-cluster/wire/src"),
    ("target_cluster", "target-cluster/src"),
    ("loadgen", "loadgen/src"),
    ("raftdrill_rng", "loadgen/rng/src"),
    ("raftdrill_faultfs", "drills/faultfs/src"),
    ("drills", "drills/src"),
    ("bench", "bench/src"),
];

/// Which workspace crates each crate may depend on (by package name in Cargo.toml).
const CRATE_RULES: &[(&str, &[&str])] = &[
    ("target-cluster/wire", &[]),
    ("target-cluster", &["raftdrill-wire", "openraft"]),
    ("loadgen", &["raftdrill-wire", "raftdrill-rng"]),
    ("loadgen/rng", &[]),
    ("drills/faultfs", &["raftdrill-rng"]),
    (
        "drills",
        &[
            "raftdrill-wire",
            "target-cluster",
            "loadgen",
            "raftdrill-faultfs",
        ],
    ),
];

/// The workspace's own packages, and openraft, which only the node may compile.
const GUARDED: &[&str] = &[
    "raftdrill-wire",
    "target-cluster",
    "loadgen",
    "raftdrill-rng",
    "raftdrill-faultfs",
    "drills",
    "openraft",
];

/// Layers of `drills`, lowest first: a module may import from its own layer and the ones
/// below, never from one above. Modules not listed are in no layer and unconstrained.
const DRILLS_LAYERS: &[&[&str]] = &[
    &["exit", "signals", "testing", "versioned"],
    &["proxy", "supervisor", "admin", "scenario", "links"],
    &["etcd"],
    &["store"],
    &["hosts", "placement"],
    &["nodes", "local_cluster"],
    &["fault", "check", "report", "compare", "export"],
    &["drill", "capacity", "live"],
    &["cmd", "cli"],
];

/// Modules that must never import from the given modules, whatever the layers allow: the
/// machinery of hosts and of etcd knows nothing of drills, and checks and pages are pure
/// logic over what a run recorded.
const FORBIDDEN: &[(&str, &str, &[&str])] = &[
    (
        "drills",
        "hosts",
        &["drill", "fault", "nodes", "capacity", "cmd", "live"],
    ),
    (
        "drills",
        "etcd",
        &[
            "drill",
            "fault",
            "nodes",
            "placement",
            "capacity",
            "cmd",
            "live",
        ],
    ),
    (
        "drills",
        "check",
        &[
            "drill",
            "fault",
            "nodes",
            "placement",
            "live",
            "cmd",
            "capacity",
        ],
    ),
    (
        "drills",
        "report",
        &[
            "drill",
            "fault",
            "nodes",
            "placement",
            "live",
            "cmd",
            "capacity",
        ],
    ),
];

/// The longest a source file may be, in lines (its unit tests included).
const MAX_FILE_LINES: usize = 600;
/// The longest a function may be, in lines, unless a `// whole: why` line stands above it.
const MAX_FN_LINES: usize = 80;

#[derive(Debug)]
struct Source {
    /// Module path from the crate root (`["drill", "faults"]`).
    module: Vec<String>,
    /// The file, relative to the workspace.
    path: String,
    /// The file's lines up to its first `#[cfg(test)]` item.
    code: Vec<String>,
    /// Whether the whole file is test code.
    is_test: bool,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The modules declared under `#[cfg(test)]` in `text` (`#[cfg(test)] mod run_tests;`).
fn test_modules(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() == "#[cfg(test)]"
            && let Some(next) = lines.get(i + 1)
        {
            let n = next
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if let Some(name) = n.strip_prefix("mod ")
                && let Some(name) = name.strip_suffix(';')
            {
                out.push(name.trim().to_string());
            }
        }
    }
    out
}

fn sources(krate: &str) -> Vec<Source> {
    let src = root().join(krate);
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let t = std::fs::read_to_string(&f).expect("readable source");
            (f, t)
        })
        .collect();
    // Test-only modules: declared under #[cfg(test)], named tests, or inside one.
    let mut test_mods: BTreeSet<Vec<String>> = BTreeSet::new();
    for (f, t) in &texts {
        let m = module_of(&src, f);
        for name in test_modules(t) {
            let mut child = m.clone();
            child.push(name);
            test_mods.insert(child);
        }
    }
    texts
        .into_iter()
        .map(|(f, t)| {
            let module = module_of(&src, &f);
            let is_test = module.iter().any(|p| p == "tests" || p.ends_with("_tests"))
                || test_mods.iter().any(|tm| module.starts_with(tm));
            let code = t
                .lines()
                .take_while(|l| l.trim() != "#[cfg(test)]" || is_test)
                .map(str::to_string)
                .collect();
            Source {
                module,
                path: f
                    .strip_prefix(root())
                    .expect("in the workspace")
                    .display()
                    .to_string(),
                code,
                is_test,
            }
        })
        .collect()
}

/// `text` without comments and string literals (so that a path in a doc or a message is no
/// import).
fn strip(lines: &[String]) -> String {
    let mut out = String::new();
    for l in lines {
        let t = l.trim_start();
        if t.starts_with("//") {
            continue;
        }
        let mut in_str = false;
        let mut prev = ' ';
        for c in l.chars() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                continue;
            }
            if c == '"' {
                in_str = true;
                prev = ' ';
                continue;
            }
            if c == '/' && prev == '/' {
                out.pop();
                break;
            }
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len().saturating_sub(1)];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| {
            let p = p.split("as").next().unwrap_or("").to_string();
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// Every path a file names: its `use` trees expanded, and `crate::`/`super::`/`self::` paths
/// in its code.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            && let Some(end) = after.find(';')
        {
            out.extend(expand(&after[..end]));
        }
        rest = after;
    }
    for anchor in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(i) = rest.find(anchor) {
            let before = rest[..i].chars().last();
            if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                let tail: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                out.push(tail.trim_end_matches(':').to_string());
            }
            rest = &rest[i + anchor.len()..];
        }
    }
    out
}

/// The module a path refers to (the longest prefix that is a file), from the module `from`.
fn resolve(
    path: &str,
    from: &[String],
    from_is_dir: bool,
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segs.first() {
        Some(&"crate") => Vec::new(),
        Some(&"super") | Some(&"self") => {
            // A file `a/b.rs` is module a::b; its `self` is a::b and its `super` is a.
            let _ = from_is_dir;
            from.to_vec()
        }
        _ => return None,
    };
    let mut i = 0;
    while let Some(s) = segs.get(i) {
        match *s {
            "crate" if i == 0 => {}
            "self" => {}
            "super" => {
                base.pop();
            }
            _ => break,
        }
        i += 1;
    }
    let tail: Vec<String> = segs[i..].iter().map(|s| s.to_string()).collect();
    let mut full = base;
    full.extend(tail);
    (0..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| modules.contains(m))
}

/// Each file's imports of other files of the same crate, leaving out a module's imports of
/// its own submodules (a parent declares and re-exports its children).
fn graph(sources: &[Source]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut g = BTreeMap::new();
    for s in sources.iter().filter(|s| !s.is_test) {
        let is_dir = s.path.ends_with("mod.rs") || s.path.ends_with("lib.rs");
        let code = strip(&s.code);
        let deps: BTreeSet<Vec<String>> = paths(&code)
            .iter()
            .filter_map(|p| resolve(p, &s.module, is_dir, &modules))
            .filter(|m| !m.starts_with(&s.module) && !m.is_empty())
            .collect();
        g.insert(s.module.clone(), deps);
    }
    g
}

/// The strongly connected parts of `g` with more than one file.
fn cycles(g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit(
        v: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        seen: &mut BTreeSet<Vec<String>>,
        order: &mut Vec<Vec<String>>,
    ) {
        if !seen.insert(v.clone()) {
            return;
        }
        for w in g.get(v).into_iter().flatten() {
            visit(w, g, seen, order);
        }
        order.push(v.clone());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for v in g.keys() {
        visit(v, g, &mut seen, &mut order);
    }
    let mut rev: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (v, ws) in g {
        for w in ws {
            rev.entry(w.clone()).or_default().insert(v.clone());
        }
    }
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        if done.contains(v) {
            continue;
        }
        let mut part = Vec::new();
        let mut stack = vec![v.clone()];
        while let Some(x) = stack.pop() {
            if !done.insert(x.clone()) {
                continue;
            }
            part.push(x.join("::"));
            for w in rev.get(&x).into_iter().flatten() {
                stack.push(w.clone());
            }
        }
        if part.len() > 1 {
            part.sort();
            out.push(part);
        }
    }
    out
}

#[test]
fn crates_depend_one_way() {
    let mut wrong = Vec::new();
    for (dir, allowed) in CRATE_RULES {
        let text = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        let deps: toml::Table = toml::from_str(&text).unwrap();
        let Some(deps) = deps.get("dependencies").and_then(|d| d.as_table()) else {
            continue;
        };
        for name in deps.keys() {
            if GUARDED.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
                wrong.push(format!("{dir} depends on {name}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "crate rules broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_imports_around_a_loop() {
    let mut found = Vec::new();
    for (name, dir) in CRATES {
        for c in cycles(&graph(&sources(dir))) {
            found.push(format!("{name}: {}", c.join(" ⇄ ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn drills_layers_import_downwards() {
    let g = graph(&sources("drills/src"));
    let layer = |m: &[String]| {
        let top = m.first()?;
        DRILLS_LAYERS.iter().position(|l| l.contains(&top.as_str()))
    };
    let mut wrong = Vec::new();
    for (from, deps) in &g {
        for to in deps {
            if let (Some(a), Some(b)) = (layer(from), layer(to))
                && b > a
            {
                wrong.push(format!(
                    "{} imports {} (a higher layer)",
                    from.join("::"),
                    to.join("::")
                ));
            }
            for (krate, module, banned) in FORBIDDEN {
                if *krate == "drills"
                    && from.first().is_some_and(|t| t == module)
                    && to.first().is_some_and(|t| banned.contains(&t.as_str()))
                {
                    wrong.push(format!("{} imports {}", from.join("::"), to.join("::")));
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "layer rules broken:\n{}",
        wrong.join("\n")
    );
}

/// The functions of `code` longer than [`MAX_FN_LINES`] with no `// whole:` line above them.
fn long_functions(code: &[String]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let t = code[i].trim_start();
        let sig = t
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        let Some(name) = sig.strip_prefix("fn ") else {
            i += 1;
            continue;
        };
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (start, mut depth, mut opened) = (i, 0i64, false);
        let mut j = i;
        let body = loop {
            let Some(line) = code.get(j) else { break None };
            let s = strip(std::slice::from_ref(line));
            let s = strip_chars(&s);
            depth += s.matches('{').count() as i64 - s.matches('}').count() as i64;
            opened |= s.contains('{');
            if opened && depth <= 0 {
                break Some(j);
            }
            if !opened && s.trim_end().ends_with(';') {
                break None;
            }
            j += 1;
        };
        if let Some(end) = body {
            let len = end - start + 1;
            let mut k = start;
            while k > 0 {
                let above = code[k - 1].trim_start();
                if above.starts_with("///") || above.starts_with("#[") {
                    k -= 1;
                } else {
                    break;
                }
            }
            let excused = k > 0 && code[k - 1].trim_start().starts_with("// whole:");
            if len > MAX_FN_LINES && !excused {
                out.push((start + 1, len, name));
            }
            // Nested functions are counted inside their parent only.
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// `s` without character literals (`'{'`), which would count as braces.
fn strip_chars(s: &str) -> String {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\'' && i + 2 < b.len() && b[i + 2] == '\'' {
            i += 3;
            continue;
        }
        if b[i] == '\'' && i + 3 < b.len() && b[i + 1] == '\\' && b[i + 3] == '\'' {
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[test]
fn files_and_functions_stay_small() {
    let mut wrong = Vec::new();
    for (_, dir) in CRATES {
        for s in sources(dir).iter().filter(|s| !s.is_test) {
            let total = std::fs::read_to_string(root().join(&s.path))
                .unwrap()
                .lines()
                .count();
            if total > MAX_FILE_LINES {
                wrong.push(format!("{}: {total} lines", s.path));
            }
            for (line, len, name) in long_functions(&s.code) {
                wrong.push(format!("{}:{line}: fn {name} is {len} lines", s.path));
            }
        }
    }
    assert!(wrong.is_empty(), "too large:\n{}", wrong.join("\n"));
}

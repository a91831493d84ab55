//! Dependencies between the top-level modules of `vtp-server` point one
//! way (docs/ARCHITECTURE.md, `crates/server`): this test reads every file
//! of `src/`, finds each path it names into another top-level module
//! (`crate::x`, `use crate::{x, y::z}`, or enough `super::` to leave its
//! own module), and fails on any that goes up or sideways without a listed
//! reason. It reads text only, so it costs nothing to run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom. A module may use the modules of the layers below its own,
/// never those above, and within its layer only what [`SIDEWAYS`] lists.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "entry points: subcommands, the data directory's backup and lock",
        &["commands", "doctor", "backup"],
    ),
    (
        "wiring: builds and runs everything",
        &["server", "sfu_node"],
    ),
    (
        "edges: HTTP API, Socket.IO signalling, SFU control over HTTP",
        &["api", "signalling", "sfu_api"],
    ),
    ("the HTTP error answer (edges only)", &["error"]),
    ("what the edges share", &["state"]),
    ("who is calling: passwords, tokens", &["auth"]),
    ("room logic", &["rooms"]),
    ("recorder", &["recording"]),
    ("webhooks: the outbox and its deliverer", &["webhooks"]),
    ("the audit log", &["audit"]),
    ("accept loop", &["serve"]),
    ("counters kept for /metrics", &["metrics"]),
    ("leaves", &["tls", "bus", "turn", "rate_limit", "telemetry"]),
    ("configuration", &["config"]),
];

/// Uses within one layer, each with its reason. A path is allowed when it
/// starts with the listed one.
const SIDEWAYS: &[(&str, &str, &str)] = &[
    (
        "doctor",
        "commands",
        "`vtp doctor` opens the store exactly as the other subcommands do",
    ),
    (
        "sfu_node",
        "server",
        "an SFU node starts the media driver as `--role all` does",
    ),
    (
        "sfu_api",
        "api::extract",
        "the SFU routes take the API's extractors, so their rejections are the API's error bodies",
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Whether `user` may name `path` (segments after `crate::`).
fn allowed(user: &str, path: &[String]) -> bool {
    let target = path[0].as_str();
    if target == user {
        return true;
    }
    let (Some(from), Some(to)) = (layer_of(user), layer_of(target)) else {
        return false;
    };
    if to > from {
        return true;
    }
    let joined = path.join("::");
    SIDEWAYS.iter().any(|(u, prefix, _)| {
        *u == user && (joined == *prefix || joined.starts_with(&format!("{prefix}::")))
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `api/auth.rs` → `[api, auth]`,
/// `api/mod.rs` → `[api]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without its line comments (doc links are not uses).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// The paths named by the text after `crate::` (or after the `super::`s
/// that reach the crate root): `a::b`, or a group `{a, b::{c, d}}`.
fn paths(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.extend(paths(&group[start..i]));
                    return out;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(paths(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        return out;
    }
    let (name, rest) = ident(s);
    if name.is_empty() || name == "self" {
        return Vec::new();
    }
    match rest.strip_prefix("::") {
        Some(rest) => {
            let inner = paths(rest);
            if inner.is_empty() {
                return vec![vec![name.to_string()]];
            }
            inner
                .into_iter()
                .map(|mut p| {
                    p.insert(0, name.to_string());
                    p
                })
                .collect()
        }
        None => vec![vec![name.to_string()]],
    }
}

/// Every path into the crate's top-level modules that `code` names, from a
/// file whose module path is `module`.
fn uses(module: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `vtp_crate::`, not `crate::`
        }
        found.extend(paths(&code[at + "crate::".len()..]));
    }
    // `super` inside an inline module (`mod tests { … }`) is that module's
    // parent, not the file's: only the code before the first one counts.
    let outer = code
        .lines()
        .position(|line| {
            let line = line.trim();
            (line.starts_with("mod ") || line.starts_with("pub mod ")) && line.ends_with('{')
        })
        .map_or(code, |n| {
            let end: usize = code.lines().take(n).map(|l| l.len() + 1).sum();
            &code[..end.min(code.len())]
        });
    for (at, _) in outer.match_indices("super::") {
        let before = outer[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // counted with the first `super::` of the chain
        }
        let mut rest = &outer[at..];
        let mut depth = module.len();
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
            depth = depth.saturating_sub(1);
        }
        if depth == 0 {
            found.extend(paths(rest));
        }
    }
    found
}

#[test]
fn modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files in {src:?}",
        files.len()
    );
    let mut problems = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_path(relative);
        let top = module[0].clone();
        if top == "lib" || top == "main" {
            continue; // the crate roots declare and start everything
        }
        seen_modules.insert(top.clone());
        if layer_of(&top).is_none() {
            problems.push(format!(
                "src/{}: module `{top}` has no layer; add it to LAYERS in tests/layering.rs \
                 and to the diagram in docs/ARCHITECTURE.md",
                relative.display()
            ));
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for path in uses(&module, &code(&text)) {
            if !allowed(&top, &path) {
                problems.push(format!(
                    "src/{}: `{top}` uses `crate::{}`, which is {} ({})",
                    relative.display(),
                    path.join("::"),
                    match (layer_of(&top), layer_of(&path[0])) {
                        (Some(a), Some(b)) if a == b =>
                            "in the same layer without a reason in SIDEWAYS",
                        (Some(_), Some(_)) => "a layer above it",
                        _ => "not a module with a layer",
                    },
                    layer_of(&path[0]).map_or("?", |l| LAYERS[l].0),
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "module dependencies must point down (docs/ARCHITECTURE.md, `crates/server`):\n{}",
        problems.join("\n")
    );
    for (_, modules) in LAYERS {
        for module in *modules {
            assert!(
                seen_modules.contains(*module),
                "LAYERS names `{module}`, which is not a module of src/ any more"
            );
        }
    }
}

#[test]
fn the_scanner_sees_groups_and_supers() {
    let found = uses(
        &["api".into(), "auth".into()],
        &code(
            "use crate::{rooms::SignalError, state::{AppState, Policy}};\n\
             // use crate::server;\n\
             let x = crate::bus::Bus::new(); use super::dto::*; use super::super::tls::X;\n\
             vtp_crate::ignored();",
        ),
    );
    let found: Vec<String> = found.into_iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "bus::Bus::new",
            "rooms::SignalError",
            "state::AppState",
            "state::Policy",
            "tls::X"
        ]
    );
    let in_tests = uses(
        &["turn".into()],
        "use super::config::Secret;\nmod tests {\n    use super::helper;\n}",
    );
    assert_eq!(in_tests.len(), 1, "{in_tests:?}");
    assert!(!allowed("rooms", &["api".into(), "dto".into()]));
    assert!(!allowed("auth", &["error".into(), "ApiError".into()]));
    assert!(!allowed("rooms", &["auth".into(), "rate_limit".into()]));
    assert!(allowed("api", &["rooms".into()]));
    assert!(allowed(
        "sfu_api",
        &["api".into(), "extract".into(), "Json".into()]
    ));
    assert!(!allowed("sfu_api", &["api".into(), "dto".into()]));
    assert!(!allowed("api", &["signalling".into()]));
}

/// `vtp-sio` is reusable: it must not depend on the server or on anything
/// that knows rooms, accounts or storage.
#[test]
fn the_socket_io_crate_depends_on_no_vtp_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sio/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let vtp: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with("vtp-"))
        .collect();
    assert!(
        vtp.is_empty(),
        "crates/sio must stay independent of the other VTP crates: {vtp:?}"
    );
}

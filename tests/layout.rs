//! The layout's one rule, checked on the source: a folder of `src/` is a layer, and imports run
//! one way, `integration -> store -> model` and `connect_session -> model + sql`, `driver -> sql`.
//! A file may not name what a layer below it must not know: the policy (`store/`) no SQL and no
//! default model, the model trait (`model/`) no store and no SQL, and so on. Comments and string
//! literals are left out, so docs may still mention any name.
//!
//! `connect_session/store.rs` is the one place above `store/` that names `Store`: the
//! `Store::auto`-style constructors of the default model live there so that `store/` need not
//! know the model.

use std::fs;
use std::path::{Path, PathBuf};

/// What each folder must not name: module paths of the layers it may not use, and the types
/// that belong to them (reached through the crate root's re-exports).
const RULES: &[(&str, &[&str])] = &[
    (
        "store",
        &[
            "crate::sql",
            "crate::connect_session",
            "crate::driver",
            "crate::integration",
            "ConnectSession",
            "Dialect",
            "Backend",
            "Statement",
            "sqlx",
            "rusqlite",
            "sea_orm",
        ],
    ),
    (
        "model",
        &[
            "crate::store",
            "crate::sql",
            "crate::connect_session",
            "crate::driver",
            "crate::integration",
            "Store",
            "ConnectSession",
            "Dialect",
            "Backend",
            "sqlx",
            "rusqlite",
        ],
    ),
    (
        "sql",
        &[
            "crate::store",
            "crate::model",
            "crate::connect_session",
            "crate::driver",
            "crate::integration",
            "Store",
            "SessionModel",
            "ConnectSession",
            "sqlx",
            "rusqlite",
            "sea_orm",
        ],
    ),
    (
        "driver",
        &[
            "crate::store",
            "crate::model",
            "crate::connect_session",
            "crate::integration",
            "Store",
            "SessionModel",
            "ConnectSession",
        ],
    ),
    (
        "connect_session",
        &[
            "crate::driver",
            "crate::integration",
            "sqlx",
            "rusqlite",
            "sea_orm",
        ],
    ),
    (
        "integration",
        &[
            "crate::sql",
            "crate::connect_session",
            "crate::driver",
            "ConnectSession",
            "Dialect",
            "Backend",
            "Statement",
            "sqlx",
            "rusqlite",
        ],
    ),
];

/// Files allowed to name `Store` although their folder's rule says otherwise.
const STORE_CONSTRUCTORS: &str = "connect_session/store.rs";

/// `source` without comments and without the contents of string and char literals.
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(bytes.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(bytes.len(), |n| i + n + 2);
            i = end;
        } else if let Some(hashes) = raw_string_start(rest) {
            let open = 2 + hashes; // r, hashes, "
            let close = format!("\"{}", "#".repeat(hashes));
            let end = rest[open..]
                .find(&close)
                .map_or(bytes.len(), |n| i + open + n + close.len());
            out.push_str("\"\"");
            i = end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The number of `#` of a raw string starting here (`r"`, `r#"`, ...), if one does.
fn raw_string_start(rest: &str) -> Option<usize> {
    let after = rest.strip_prefix('r')?;
    let hashes = after.len() - after.trim_start_matches('#').len();
    after[hashes..].starts_with('"').then_some(hashes)
}

/// Whether `name` occurs in `code` as a whole path or word. A name after `::` belongs to the
/// path before it (`session_store::Error::Backend` is a variant, not this crate's `Backend`)
/// unless that path is `crate::` itself.
fn names(code: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = &code[..at];
        let after = code[at + name.len()..].chars().next();
        let whole = !before.chars().next_back().is_some_and(word) && !after.is_some_and(word);
        let foreign_path = before.ends_with("::") && !before.ends_with("crate::");
        whole && (name.contains("::") || !foreign_path)
    })
}

/// The breaches of the rule in one file: `(forbidden name, line)`.
fn breaches(folder: &str, relative: &str, source: &str) -> Vec<(String, usize)> {
    let Some((_, forbidden)) = RULES.iter().find(|(f, _)| *f == folder) else {
        return Vec::new();
    };
    let code = code_only(source);
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for name in *forbidden {
            if *name == "Store" && relative == STORE_CONSTRUCTORS {
                continue;
            }
            if names(line, name) {
                found.push(((*name).to_owned(), n + 1));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut problems = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        let Some((folder, _)) = relative.split_once('/') else {
            continue; // lib.rs, error.rs, ...: the crate root's own files
        };
        let source = fs::read_to_string(&path).expect("a source file is readable");
        checked += 1;
        for (name, line) in breaches(folder, &relative, &source) {
            problems.push(format!("src/{relative}:{line} names {name}"));
        }
    }
    assert!(checked >= 20, "only {checked} files found under src/*/");
    assert!(
        problems.is_empty(),
        "a layer names what lies beside or above it (see tests/layout.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_folder_of_src_has_a_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            assert!(
                RULES.iter().any(|(f, _)| *f == name),
                "src/{name}/ is a layer with no rule in tests/layout.rs"
            );
        }
    }
}

#[test]
fn the_check_sees_a_breach_and_ignores_comments_and_strings() {
    let bad = "use crate::sql::Arg;\nfn f() -> ConnectSession<()> { todo!() }\n";
    let found = breaches("store", "store/ops.rs", bad);
    assert_eq!(
        found,
        vec![
            ("crate::sql".to_owned(), 1),
            ("ConnectSession".to_owned(), 2)
        ]
    );
    let fine = "// ConnectSession in a comment\n/* crate::sql */ let s = \"ConnectSession\";\n\
                let r = r#\"Dialect\"#; let c = SeaOrmStore;\n";
    assert_eq!(breaches("store", "store/ops.rs", fine), Vec::new());
    assert_eq!(
        breaches("model", "model/mod.rs", "impl Store {}"),
        vec![("Store".to_owned(), 1)]
    );
    assert_eq!(
        breaches("connect_session", STORE_CONSTRUCTORS, "impl Store {}"),
        Vec::new()
    );
    assert_eq!(
        breaches(
            "integration",
            "integration/x.rs",
            "store::Error::Backend(m); crate::Backend"
        ),
        vec![("Backend".to_owned(), 1)]
    );
}

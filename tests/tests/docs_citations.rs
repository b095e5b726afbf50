//! Every section the code and the documents cite exists.
//!
//! Comments cite the architecture as `docs/ARCHITECTURE.md#<anchor>`, and the Markdown
//! documents link to each other's sections (`[…](../README.md#enrolling-a-gateway)`,
//! `[…](#alarm-model)`). This test reads every `.rs`, `.toml`, `.sh` and `.md` file of the
//! repository (not `target/`, not `.git/`) and checks that each cited file exists and has a
//! heading (or an HTML `id`) with that anchor, the way GitHub derives it. A renamed or
//! removed section fails it, naming the citing file and line.
//!
//! It also checks that nothing cites `DESIGN.md` any more: that file is not part of the
//! repository, and `docs/ARCHITECTURE.md` is the project's own description. (Released schema
//! migrations, `.sql`, are never edited — a change is a new step — so theirs stay.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The repository's root: this crate lives in `tests/`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Every file under `dir` with one of `extensions`, skipping build output and version control.
fn files_with(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        if kind.is_dir() {
            if name == "target" || name == ".git" || name == "node_modules" {
                continue;
            }
            files_with(&path, extensions, out);
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|ext| extensions.iter().any(|e| ext == *e))
        {
            out.push(path);
        }
    }
}

/// The files the checks read: every `.rs`, `.toml`, `.sh` and `.md` but this one (whose
/// examples cite files that do not exist).
fn scanned_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_with(root, &["rs", "toml", "sh", "md"], &mut files);
    let this_file = root.join("tests/tests").join(
        Path::new(file!())
            .file_name()
            .expect("this test has a file name"),
    );
    files.retain(|f| *f != this_file);
    files.sort();
    files
}

/// GitHub's anchor for a heading: inline link targets and markup dropped, lower case, every
/// character that is not a letter, a digit, `-` or `_` removed, spaces turned into `-`.
fn anchor_of(heading: &str) -> String {
    // `[text](target)` shows as `text`: drop every `(target)` that follows a `]`.
    let mut text = String::new();
    let mut chars = heading.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ']' && chars.peek() == Some(&'(') {
            for c in chars.by_ref() {
                if c == ')' {
                    break;
                }
            }
            continue;
        }
        text.push(c);
    }
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a Markdown file defines: one per heading outside code fences (repeats get
/// GitHub's `-1`, `-2`, … suffixes), and every HTML `id="…"` / `name="…"`.
fn anchors_in(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    Some(open) if open == marker => None,
                    None => Some(marker),
                    other => other,
                };
            }
        }
        if fence.is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            let base = anchor_of(trimmed[hashes..].trim().trim_end_matches('#'));
            let n = seen.entry(base.clone()).or_insert(0);
            let anchor = if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            *n += 1;
            anchors.insert(anchor);
        }
        for attr in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attr) {
                rest = &rest[at + attr.len()..];
                if let Some(end) = rest.find('"') {
                    anchors.insert(rest[..end].to_string());
                }
            }
        }
    }
    anchors
}

/// One citation of a section: where it is, the file it names and the anchor.
#[derive(Debug)]
struct Citation {
    at: String,
    file: PathBuf,
    anchor: String,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

fn is_anchor_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// `docs/<FILE>.md#<anchor>` anywhere in a file, resolved from the repository's root.
fn docs_citations(root: &Path, at: &str, text: &str, out: &mut Vec<Citation>) {
    let mut from = 0;
    while let Some(found) = text[from..].find("docs/") {
        let start = from + found;
        from = start + "docs/".len();
        // `…/docs/x.md` is some other docs directory, not a citation from the root.
        if text[..start].chars().next_back().is_some_and(is_path_char) {
            continue;
        }
        let path: String = text[start..]
            .chars()
            .take_while(|c| is_path_char(*c))
            .collect();
        let path = path.trim_end_matches('.');
        let after = &text[start + path.len()..];
        if !path.ends_with(".md") || !after.starts_with('#') {
            continue;
        }
        let anchor: String = after[1..]
            .chars()
            .take_while(|c| is_anchor_char(*c))
            .collect();
        // `docs/ARCHITECTURE.md#…` or `#<section>` in prose names the form, not a section.
        if anchor.is_empty() {
            continue;
        }
        let line = text[..start].lines().count().max(1);
        out.push(Citation {
            at: format!("{at}:{line}"),
            file: root.join(path),
            anchor,
        });
    }
}

/// Markdown links with a fragment, `[…](path.md#anchor)` or `[…](#anchor)`, resolved from the
/// linking file's directory.
fn markdown_links(file: &Path, at: &str, text: &str, out: &mut Vec<Citation>) {
    let mut from = 0;
    while let Some(found) = text[from..].find("](") {
        let start = from + found + 2;
        from = start;
        let Some(len) = text[start..].find(')') else {
            continue;
        };
        let target = &text[start..start + len];
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let Some((path, anchor)) = target.split_once('#') else {
            continue;
        };
        if !(path.is_empty() || path.ends_with(".md")) {
            continue;
        }
        let linked = if path.is_empty() {
            file.to_path_buf()
        } else {
            normalise(&file.parent().expect("a file has a directory").join(path))
        };
        let line = text[..start].lines().count().max(1);
        out.push(Citation {
            at: format!("{at}:{line}"),
            file: linked,
            anchor: anchor.to_string(),
        });
    }
}

/// `a/b/../c` as `a/c`, without touching the file system (the file may not exist).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn relative<'a>(root: &Path, path: &'a Path) -> std::borrow::Cow<'a, str> {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy()
}

/// Every broken citation in `files`: a missing file or a missing section, one line each.
fn broken_citations(root: &Path, files: &[PathBuf]) -> (usize, Vec<String>) {
    let mut citations = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let at = relative(root, file).into_owned();
        docs_citations(root, &at, &text, &mut citations);
        if file.extension().is_some_and(|e| e == "md") {
            markdown_links(file, &at, &text, &mut citations);
        }
    }
    let mut anchors: BTreeMap<PathBuf, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut broken = Vec::new();
    for c in &citations {
        let defined = anchors
            .entry(c.file.clone())
            .or_insert_with(|| fs::read_to_string(&c.file).ok().map(|t| anchors_in(&t)));
        match defined {
            None => broken.push(format!(
                "{}: cites {}#{}, but {} does not exist",
                c.at,
                relative(root, &c.file),
                c.anchor,
                relative(root, &c.file)
            )),
            Some(set) if !set.contains(&c.anchor) => broken.push(format!(
                "{}: cites {}#{}, but {} has no heading with that anchor",
                c.at,
                relative(root, &c.file),
                c.anchor,
                relative(root, &c.file)
            )),
            Some(_) => {}
        }
    }
    (citations.len(), broken)
}

#[test]
fn every_cited_section_exists() {
    let root = repo_root();
    let files = scanned_files(&root);
    let (count, broken) = broken_citations(&root, &files);
    assert!(
        count >= 40,
        "found only {count} section citations in {} files: is the scan reading the tree?",
        files.len()
    );
    assert!(
        broken.is_empty(),
        "{} citation(s) of a missing section (fix the citation or the heading):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn nothing_cites_design_md() {
    let root = repo_root();
    let mut citing = Vec::new();
    for file in &scanned_files(&root) {
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            if line.contains("DESIGN.md") {
                citing.push(format!(
                    "{}:{}: {}",
                    relative(&root, file),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        citing.is_empty(),
        "DESIGN.md is not in the repository; cite docs/ARCHITECTURE.md#<section> instead:\n{}",
        citing.join("\n")
    );
}

/// The checker itself: GitHub's anchors, and a missing section or file is reported.
#[test]
fn the_checker_finds_a_missing_section() {
    assert_eq!(anchor_of("Data path"), "data-path");
    assert_eq!(anchor_of("The fold and ISA-18.2"), "the-fold-and-isa-182");
    assert_eq!(anchor_of("`[[modbus.device]]` keys"), "modbusdevice-keys");
    assert_eq!(anchor_of("Users, roles and scope"), "users-roles-and-scope");
    assert_eq!(anchor_of("[Linked](other.md) title"), "linked-title");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    fs::create_dir_all(root.join("docs")).expect("mkdir docs");
    fs::write(
        root.join("docs/A.md"),
        "# A\n\n## Data path\n\n```\n## not a heading\n```\n\n## Data path\n",
    )
    .expect("write docs/A.md");
    fs::write(
        root.join("lib.rs"),
        "//! docs/A.md#data-path docs/A.md#data-path-1\n//! docs/A.md#not-a-heading\n\
         //! docs/B.md#x other/docs/A.md#ignored docs/A.md#<section> docs/A.md#…\n",
    )
    .expect("write lib.rs");
    fs::write(
        root.join("docs/B-link.md"),
        "[up](A.md#a) [self](#missing)\n",
    )
    .expect("write docs/B-link.md");
    let files = [root.join("lib.rs"), root.join("docs/B-link.md")];
    let (count, broken) = broken_citations(root, &files);
    assert_eq!(count, 6, "{broken:?}");
    assert_eq!(
        broken,
        [
            "lib.rs:2: cites docs/A.md#not-a-heading, but docs/A.md has no heading with that anchor",
            "lib.rs:3: cites docs/B.md#x, but docs/B.md does not exist",
            "docs/B-link.md:1: cites docs/B-link.md#missing, but docs/B-link.md has no heading with that anchor",
        ]
    );
}

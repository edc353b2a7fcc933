//! The repository's documents stand on their own, as a user reads them:
//! every relative link of every Markdown file (outside build output and
//! installed packages) names a file or folder inside the repository that
//! exists. A user's clone has nothing beside it.

use std::path::{Component, Path, PathBuf};

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let skip = ["target", "node_modules", ".git"];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && !skip.iter().any(|s| name == *s) {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
}

/// The targets of `[text](target)` links, without anchors.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or_default().trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// `path` with `.` and `..` resolved, without touching the file system.
fn normal(path: &Path) -> PathBuf {
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

#[test]
fn no_document_links_outside_the_repository_or_to_nothing() {
    let root = normal(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() >= 5, "the READMEs were found: {files:?}");
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in links(&text) {
            let resolved = normal(&file.parent().unwrap().join(&target));
            if !resolved.starts_with(&root) {
                bad.push(format!(
                    "{}: {target} leaves the repository",
                    file.display()
                ));
            } else if !resolved.exists() {
                bad.push(format!("{}: {target} does not exist", file.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn links_are_read_as_markdown_writes_them() {
    let text = "see [a](../x.md#part), [b](https://example.com) and [c](docs/y.png).";
    assert_eq!(links(text), ["../x.md", "docs/y.png"]);
}

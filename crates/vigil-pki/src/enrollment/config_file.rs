//! The one edit enrollment makes to a node's config file: the link's `url` set to the
//! parent's `mqtts://` broker (`[uplink] url` in `agent.toml`, `[parent] url` in
//! `hub.toml`), with `toml_edit`, so every comment, the layout, the table's other keys and
//! the value's own trailing comment survive. A missing table is added at the end.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::files::write_atomic;

/// `text` with `[table] url = url`. Fails (in words) when `text` is not TOML or `table` is
/// not a table.
pub fn with_link_url(text: &str, table: &str, url: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    match doc.get_mut(table) {
        Some(item) => {
            let Some(section) = item.as_table_like_mut() else {
                return Err(format!("`{table}` is not a table: write [{table}]"));
            };
            match section.get_mut("url").and_then(|v| v.as_value_mut()) {
                Some(value) => {
                    // Keep the comment after the old value.
                    let decor = value.decor().clone();
                    *value = toml_edit::Value::from(url);
                    *value.decor_mut() = decor;
                }
                None => {
                    section.insert("url", toml_edit::value(url));
                }
            }
        }
        None => {
            let mut section = toml_edit::Table::new();
            section.insert("url", toml_edit::value(url));
            doc.insert(table, toml_edit::Item::Table(section));
        }
    }
    Ok(doc.to_string())
}

/// The `url` of `[table]` in `text`, when there is one.
pub fn link_url(text: &str, table: &str) -> Option<String> {
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    doc.get(table)?
        .as_table_like()?
        .get("url")?
        .as_str()
        .map(str::to_owned)
}

/// Sets `[table] url = url` in the config file at `path`, written atomically with the
/// file's mode kept. Errors name the file.
pub fn set_link_url(path: &Path, table: &str, url: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let edited =
        with_link_url(&text, table, url).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    write_atomic(path, edited.as_bytes(), mode).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = r#"# The gateway at prison 3.
[node]
id = "gw-prison-3"   # from the asset register
site = "ministry/p/c/county/prison-3"

[uplink]
# the county hub's broker
url = "mqtt://127.0.0.1:1883"   # mqtts:// once enrolled

[store]
path = "agent.db"
"#;

    #[test]
    fn the_url_is_replaced_and_everything_else_kept() {
        assert_eq!(
            link_url(AGENT, "uplink").as_deref(),
            Some("mqtt://127.0.0.1:1883")
        );
        assert_eq!(link_url(AGENT, "parent"), None);
        let edited = with_link_url(AGENT, "uplink", "mqtts://hub.example:8883").expect("edit");
        assert_eq!(
            edited,
            AGENT.replace("mqtt://127.0.0.1:1883", "mqtts://hub.example:8883")
        );
        let text = "# my hub\n[node]\nid = \"c\" # the id\n\n[parent]\nurl = \"mqtt://old:1883\" # city hub\nca = \"x.pem\"\n";
        let out = with_link_url(text, "parent", "mqtts://city:8883").expect("edit");
        assert_eq!(out, text.replace("mqtt://old:1883", "mqtts://city:8883"));
    }

    #[test]
    fn an_inline_table_a_missing_url_or_a_missing_table_get_one_and_a_non_table_is_refused() {
        let edited = with_link_url("uplink = { url = \"mqtt://a\" }\n", "uplink", "mqtts://b:1")
            .expect("inline");
        assert_eq!(edited, "uplink = { url = \"mqtts://b:1\" }\n");
        let edited = with_link_url("[uplink]\n", "uplink", "mqtts://b:1").expect("missing");
        assert_eq!(edited, "[uplink]\nurl = \"mqtts://b:1\"\n");
        let edited =
            with_link_url("[node]\nid = \"c\"\n", "parent", "mqtts://city:8883").expect("add");
        assert!(
            edited.ends_with("[parent]\nurl = \"mqtts://city:8883\"\n"),
            "{edited}"
        );
        let err = with_link_url("parent = 1\n", "parent", "x").expect_err("not a table");
        assert!(err.contains("[parent]"), "{err}");
        assert!(with_link_url("[uplink\n", "uplink", "mqtts://b:1").is_err());
    }

    #[test]
    fn the_file_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.toml");
        std::fs::write(&path, "[node]\nid = \"c\"\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        set_link_url(&path, "parent", "mqtts://city:8883").expect("set");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .contains("url = \"mqtts://city:8883\""));
        let err =
            set_link_url(&dir.path().join("missing.toml"), "parent", "x").expect_err("missing");
        assert!(err.contains("missing.toml"), "{err}");
    }
}

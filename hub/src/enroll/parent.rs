//! `vigil-hub enroll --hub URL --token T --config hub.toml`: this hub enrolls with its
//! parent, exactly as a gateway does (`vigil_pki::enroll`): its key and CSR are made here
//! and the key never leaves; the parent's CA is checked against the token's pin; the
//! parent's answer is written to `[parent] ca`, `cert` and `key` (by default `parent/ca.pem`,
//! `parent/node.pem` and `parent/node.key` (0600) next to the store); and `[parent] url` in
//! `hub.toml` is set to the parent's `mqtts://` broker, with `toml_edit`, so the file's
//! comments and layout survive. Restart the hub to link up.

use std::path::Path;

use vigil_pki::files::write_atomic;
use vigil_pki::{write_certificate, write_private_key, EnrollToken, Enrolled};

use super::command::CommandError;
use crate::config::HubConfig;

/// Enrolls the hub `config` (read from `config_path`) at the parent `hub_url` with
/// `token`; returns what it got and wrote.
pub async fn enroll_with_parent(
    config: &HubConfig,
    config_path: &Path,
    hub_url: &str,
    token: &str,
) -> Result<Enrolled, CommandError> {
    if config.node.level == vigil_core::Level::Ministry {
        return Err(CommandError::Message(
            "the ministry is the top of the network and has no parent to enroll with".into(),
        ));
    }
    let token: EnrollToken = token
        .parse()
        .map_err(|e: vigil_pki::TokenError| CommandError::Message(e.to_string()))?;
    // The key is made here and never leaves; only the CSR goes to the parent.
    let request = vigil_pki::node_key_and_csr(&config.node.id)?;
    let enrolled = vigil_pki::enroll(
        hub_url,
        &token,
        &request.csr_pem,
        &config.node.id,
        vigil_pki::enroll_client::DEFAULT_TIMEOUT,
    )
    .await?;
    let files = config
        .parent_tls_files()
        .unwrap_or_else(|| vigil_pki::TlsFiles::in_dir(&config.parent_dir()));
    // A [parent] written without paths uses the default directory: create it.
    for file in [&files.ca, &files.cert, &files.key] {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
    }
    write_private_key(&files.key, &request.key_pem)?;
    write_certificate(&files.cert, &enrolled.certificate_pem)?;
    write_certificate(&files.ca, &enrolled.ca_pem)?;
    set_parent_url(config_path, &enrolled.broker)?;
    Ok(enrolled)
}

fn create_private_dir(dir: &Path) -> Result<(), CommandError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CommandError::Message(format!("cannot create {}: {e}", dir.display())))
}

/// Sets `[parent] url = url` in the TOML file at `path`, keeping everything else as it was
/// (comments, layout, the other keys of `[parent]`).
pub fn set_parent_url(path: &Path, url: &str) -> Result<(), CommandError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError::Message(format!("cannot read {}: {e}", path.display())))?;
    let edited = with_parent_url(&text, url)
        .map_err(|e| CommandError::Message(format!("{}: {e}", path.display())))?;
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777)
    };
    write_atomic(path, edited.as_bytes(), mode)?;
    Ok(())
}

/// `text` with `[parent] url = url`.
pub fn with_parent_url(text: &str, url: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    match doc.get_mut("parent") {
        Some(item) => {
            let Some(table) = item.as_table_like_mut() else {
                return Err("parent is not a table: write [parent]".to_owned());
            };
            match table.get_mut("url").and_then(|v| v.as_value_mut()) {
                Some(value) => {
                    // Keep the comment after the old value.
                    let decor = value.decor().clone();
                    *value = toml_edit::Value::from(url);
                    *value.decor_mut() = decor;
                }
                None => {
                    table.insert("url", toml_edit::value(url));
                }
            }
        }
        None => {
            let mut table = toml_edit::Table::new();
            table.insert("url", toml_edit::value(url));
            doc.insert("parent", toml_edit::Item::Table(table));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_url_is_set_and_comments_survive() {
        let text = "# my hub\n[node]\nid = \"c\" # the id\n\n[parent]\nurl = \"mqtt://old:1883\" # city hub\nca = \"x.pem\"\n";
        let out = with_parent_url(text, "mqtts://city:8883").expect("edit");
        assert!(out.contains("# my hub\n"), "{out}");
        assert!(out.contains("id = \"c\" # the id"), "{out}");
        assert!(
            out.contains("url = \"mqtts://city:8883\" # city hub"),
            "{out}"
        );
        assert!(out.contains("ca = \"x.pem\""), "{out}");

        let out = with_parent_url("[node]\nid = \"c\"\n", "mqtts://city:8883").expect("add");
        assert!(
            out.ends_with("[parent]\nurl = \"mqtts://city:8883\"\n"),
            "{out}"
        );
        assert!(with_parent_url("parent = 1\n", "x").is_err());
    }
}

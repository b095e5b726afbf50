//! `vigil-agent profile validate`: the installer's check of device profiles before they go
//! on a gateway.

use std::io::Write;
use std::path::PathBuf;

/// Validates each file, writes a line per valid profile to `out` and every problem to `err`.
/// Returns whether all were valid.
pub fn validate(
    files: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<bool> {
    let mut all_ok = true;
    for file in files {
        match vigil_profile::load_file(file) {
            Ok(profile) => {
                let rules = profile.points.iter().filter(|p| p.has_rules()).count();
                writeln!(
                    out,
                    "ok  {}: profile {} ({} {}), {} points, {} with alarm rules",
                    file.display(),
                    profile.name,
                    profile.manufacturer,
                    profile.model,
                    profile.points.len(),
                    rules
                )?;
            }
            Err(problems) => {
                all_ok = false;
                for p in problems {
                    writeln!(err, "error: {p}")?;
                }
            }
        }
    }
    Ok(all_ok)
}

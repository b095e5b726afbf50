//! Every profile shipped in `device-profiles/` validates, and is sane beyond the schema: no
//! two multi-register points overlap, and the device kinds a facility runs are all there.

use std::path::PathBuf;

use vigil_profile::{load_dir, DataType, Table};

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles")
}

#[test]
fn every_shipped_profile_validates() {
    let profiles = match load_dir(&profiles_dir()) {
        Ok(p) => p,
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("invalid shipped profiles:\n{}", text.join("\n"));
        }
    };
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    for kind in [
        "perimeter-fence-controller",
        "microwave-barrier",
        "door-access-controller",
        "fire-alarm-panel",
        "smoke-heat-detector",
        "temp-humidity-sensor",
        "ups",
        "power-meter",
    ] {
        assert!(
            names.contains(&kind),
            "missing profile {kind}: have {names:?}"
        );
    }
}

#[test]
fn shipped_points_do_not_overlap() {
    let profiles = load_dir(&profiles_dir()).expect("valid");
    for p in &profiles {
        for (i, a) in p.points.iter().enumerate() {
            for b in &p.points[i + 1..] {
                if a.table != b.table {
                    continue;
                }
                // Bits of one status word may share a register.
                let bits_of_a_word = a.data_type == DataType::Bool
                    && b.data_type == DataType::Bool
                    && !matches!(a.table, Table::Coil | Table::DiscreteInput);
                if bits_of_a_word {
                    assert!(
                        a.address != b.address || a.bit != b.bit,
                        "{}: {} and {} share a bit",
                        p.name,
                        a.name,
                        b.name
                    );
                    continue;
                }
                let (a0, a1) = (a.address, a.address + a.width() - 1);
                let (b0, b1) = (b.address, b.address + b.width() - 1);
                assert!(
                    a1 < b0 || b1 < a0,
                    "{}: {} and {} overlap",
                    p.name,
                    a.name,
                    b.name
                );
            }
        }
    }
}

#[test]
fn both_word_orders_are_covered_in_32_bit_power_values() {
    let profiles = load_dir(&profiles_dir()).expect("valid");
    let meters: Vec<_> = profiles
        .iter()
        .filter(|p| p.name.starts_with("power-meter"))
        .collect();
    let orders: std::collections::HashSet<_> = meters
        .iter()
        .flat_map(|p| p.points.iter())
        .filter(|pt| pt.width() == 2)
        .map(|pt| pt.word_order)
        .collect();
    assert_eq!(
        orders.len(),
        2,
        "power meters must exercise both word orders"
    );
}

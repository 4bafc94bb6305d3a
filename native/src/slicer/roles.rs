//! Normalized extrusion roles: one vocabulary over the feature labels of every slicer
//! (`External perimeter`, `WALL-OUTER`, `Outer wall` are all `outer_wall`).

/// Roles and the label fragments that mean them, tried in order (first match wins: "support
/// interface" before "support", "external perimeter" before "perimeter", "solid infill"
/// before "infill"). Labels are compared in lower case with `_` read as a space.
const RULES: &[(&str, &[&str])] = &[
    (
        "support_interface",
        &["support interface", "support-interface", "support material interface", "support roof", "support floor", "support transition"],
    ),
    ("support", &["support"]),
    ("wipe_tower", &["wipe tower", "prime tower", "prime-tower", "purge"]),
    ("skirt_brim", &["skirt", "brim"]),
    ("overhang_wall", &["overhang"]),
    ("outer_wall", &["external perimeter", "outer wall", "wall-outer", "outer perimeter", "shell"]),
    ("inner_wall", &["perimeter", "inner wall", "wall-inner", "wall"]),
    ("bridge", &["bridge"]),
    ("gap_fill", &["gap fill", "gapfill", "gap infill", "thin"]),
    ("ironing", &["ironing"]),
    ("top_surface", &["top solid", "top surface", "top", "skin", "roof"]),
    ("bottom_surface", &["bottom surface", "bottom", "floor"]),
    ("solid_infill", &["solid infill", "solid fill", "internal solid", "solid"]),
    ("infill", &["infill", "fill", "sparse"]),
    ("custom", &["custom"]),
];

/// The role of a slicer's feature label; "other" when no rule matches.
pub fn role_of(feature: &str) -> &'static str {
    let label = feature.trim().to_lowercase().replace('_', " ");
    RULES.iter().find(|(_, needles)| needles.iter().any(|n| label.contains(n))).map_or("other", |(role, _)| role)
}

#[cfg(test)]
mod tests {
    use super::role_of;

    #[test]
    fn labels_of_several_slicers() {
        for (label, role) in [
            ("External perimeter", "outer_wall"),
            ("WALL-OUTER", "outer_wall"),
            ("Outer wall", "outer_wall"),
            ("Perimeter", "inner_wall"),
            ("Overhang perimeter", "overhang_wall"),
            ("Solid infill", "solid_infill"),
            ("Internal infill", "infill"),
            ("SKIN", "top_surface"),
            ("Support material interface", "support_interface"),
            ("wipe_tower", "wipe_tower"),
            ("  Gap fill ", "gap_fill"),
            ("Custom", "custom"),
            ("Mystery", "other"),
        ] {
            assert_eq!(role_of(label), role, "{label}");
        }
    }
}

//! The code's shape, as the README describes it: its module map is `src/lib.rs`'s, and no file
//! of the engine grows past what one reading takes.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_readmes_module_map_is_lib_rs() {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section = readme
        .split("## Where things are")
        .nth(1)
        .expect("the README has a module map")
        .split("\n## ")
        .next()
        .unwrap();
    let mapped: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(mapped, modules, "README's module map vs src/lib.rs");
}

#[test]
fn no_engine_file_is_over_about_five_hundred_lines() {
    const LIMIT: usize = 560;
    let mut long = Vec::new();
    let mut dirs = vec![Path::new(ROOT).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                if lines > LIMIT {
                    long.push(format!("{} ({lines})", path.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "over {LIMIT} lines: {long:?}");
}

//! Embeds `sql/` in the binary in the order `sql/load.sql` lists, so `logmon migrate` applies
//! exactly what a DBA applies with `\i sql/load.sql`. refinery's `embed_migrations!` does not
//! notice new files by itself, hence the `rerun-if-changed` lines.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=sql");
    let load = fs::read_to_string("sql/load.sql").expect("sql/load.sql");
    let mut out = String::from(
        "/// `(file name, contents)` of every `sql/` file, in load order.\npub const SQL_FILES: &[(&str, &str)] = &[\n",
    );
    for line in load.lines() {
        let Some(name) = line.trim().strip_prefix("\\ir ") else {
            continue;
        };
        let name = name.trim();
        let path = Path::new("sql").join(name);
        assert!(path.exists(), "sql/load.sql names {name}, which does not exist");
        let abs = fs::canonicalize(&path).unwrap();
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", abs.display().to_string()));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("sql_files.rs");
    fs::write(dest, out).unwrap();
}

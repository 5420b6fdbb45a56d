//! The man pages in man/ are generated from the clap definitions; this test fails when they
//! are stale. `HUSK_UPDATE_MAN=1 cargo test -p husk --test man` rewrites them.

use clap::CommandFactory;
use std::path::Path;

fn render(cmd: &clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut out)
        .expect("render man page");
    out
}

fn pages() -> Vec<(String, Vec<u8>)> {
    let root = husk::cli::Cli::command().version(None::<&str>);
    let mut out = vec![("husk.8".to_string(), render(&root))];
    for sub in root.get_subcommands() {
        let name = format!("husk-{}", sub.get_name());
        // clap keeps command names as &'static str; a few leaked bytes in a test are fine.
        let page = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
        out.push((format!("{name}.8"), render(&page)));
    }
    out
}

#[test]
fn man_pages_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("HUSK_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    let pages = pages();
    for (name, body) in &pages {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, body).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(body) {
            stale.push(name.clone());
        }
    }
    // A page for a command that no longer exists is stale too.
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".8") && !pages.iter().any(|(n, _)| *n == name) {
            if update {
                std::fs::remove_file(entry.path()).unwrap();
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run HUSK_UPDATE_MAN=1 cargo test -p husk --test man"
    );
}

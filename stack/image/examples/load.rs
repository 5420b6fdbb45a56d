//! `cargo run -p husk-image --example load -- STORE ARCHIVE...`: loads archives into a store
//! and lists its images, timing each load (notes/image.md's measurements).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: load STORE ARCHIVE...")?;
    let mut store = husk_image::Store::open(&root)?;
    for archive in args {
        let t = Instant::now();
        let loaded = store.load_file(archive.as_ref(), &mut |p| {
            if let husk_image::Progress::Layer {
                index,
                count,
                diff_id,
                reused,
            } = p
            {
                eprintln!(
                    "layer {}/{count} {diff_id}{}",
                    index + 1,
                    if reused {
                        " (already in the store)"
                    } else {
                        ""
                    }
                );
            }
        })?;
        for l in loaded {
            println!("loaded {} {:?} in {:?}", l.id, l.tags, t.elapsed());
        }
    }
    for i in store.images()? {
        println!("{} {:?} {} bytes", &i.id[7..19], i.repo_tags, i.size);
    }
    Ok(())
}

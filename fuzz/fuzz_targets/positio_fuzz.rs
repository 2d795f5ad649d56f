//! One libFuzzer binary for every target of `positio::fuzz`: POSITIO_FUZZ_TARGET names the
//! target; POSITIO_FUZZ_SEEDS, a folder, receives the target's seeds first if it is empty (the
//! corpus fuzz/run.sh starts from).
#![no_main]

use positio::fuzz::Harness;
use std::path::Path;
use std::sync::OnceLock;

static HARNESS: OnceLock<(Harness, String)> = OnceLock::new();

fn harness() -> &'static (Harness, String) {
    HARNESS.get_or_init(|| {
        let target = std::env::var("POSITIO_FUZZ_TARGET").expect("set POSITIO_FUZZ_TARGET");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let harness = Harness::new(&fixtures).expect("a scratch folder");
        if let Ok(dir) = std::env::var("POSITIO_FUZZ_SEEDS") {
            let dir = Path::new(&dir);
            std::fs::create_dir_all(dir).expect("the seed folder");
            if std::fs::read_dir(dir)
                .expect("the seed folder")
                .next()
                .is_none()
            {
                for (i, seed) in harness.seeds(&target).expect("a target").iter().enumerate() {
                    std::fs::write(dir.join(format!("seed-{i}")), seed).expect("a seed");
                }
            }
        }
        (harness, target)
    })
}

libfuzzer_sys::fuzz_target!(init: { harness(); }, |data: &[u8]| {
    let (harness, target) = harness();
    harness.run(target, data).expect("the harness runs");
});

//! Every example config in `configs/` resolves and validates.

use hicra_rl::config::TrainConfig;

#[test]
fn example_configs_resolve() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            TrainConfig::load(Some(&p), &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(
        n >= 6,
        "expected the lab configs and smollm2-arith.toml, found {n}"
    );
}

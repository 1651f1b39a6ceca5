//! Rebuilds the crate when the embedded web files change: `include_dir!` (infra/src/http/web.rs)
//! reads `web/` at compile time, and cargo knows nothing of those files otherwise.

fn main() {
    for dir in ["../web/console", "../web/vendor", "../web/widget"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}

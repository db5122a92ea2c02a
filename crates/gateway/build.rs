//! Renders the API's OpenAPI document (`contracts/openapi.yaml`) as JSON for `GET /openapi.json`.
//! A document that is not valid YAML fails the build, so the gateway never serves a broken one.

use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let src = manifest.join("../../contracts/openapi.yaml");
    println!("cargo:rerun-if-changed={}", src.display());
    let yaml =
        std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let doc: serde_json::Value = serde_yaml::from_str(&yaml)
        .unwrap_or_else(|e| panic!("{} is not a valid YAML document: {e}", src.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("openapi.json");
    let json = serde_json::to_vec(&doc).expect("the document as JSON");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

//! What the fuzz targets share: the shipped adapters loaded once, and the properties
//! every input must keep (no panic; the projected and the whole-tree decodings agree).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lgsp_core::envelope::Envelope;
use lgsp_core::step::StepRegistry;
use lgsp_mapping::decode::Limits;
use lgsp_mapping::dsl::{Adapters, Decoding};

/// The repository (this crate lives in `fuzz/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The adapters of the shipped configuration, with the Rust steps the binary registers.
pub fn adapters() -> &'static Adapters {
    static ADAPTERS: OnceLock<Adapters> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let cfg = repo().join("config/lgsp.yaml");
        let loaded = lgsp_core::config::load(&cfg, lgsp_core::config::EnvOverrides::none())
            .unwrap_or_else(|p| panic!("the shipped configuration does not load: {p:?}"));
        let mut steps = StepRegistry::new();
        lgsp_adapter_emis::register(&mut steps).unwrap_or_else(|e| panic!("emis steps: {e}"));
        lgsp_adapter_tax::register(&mut steps).unwrap_or_else(|e| panic!("tax steps: {e}"));
        Adapters::load_with_steps(&loaded, steps)
            .unwrap_or_else(|p| panic!("the shipped adapters do not load: {p:?}"))
    })
}

/// Map `data` with adapter `name` as the bus does: its first byte picks the message type
/// (of the adapter's, in order), the rest is the body, its format sniffed. Whatever the
/// input, mapping must not panic, and where the projected decoding maps, the whole tree
/// must map to the same outputs.
pub fn map(name: &str, data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let adapter = &adapters().by_name[name];
    let types: Vec<&str> = adapter.message_types().collect();
    let ty = types[usize::from(pick) % types.len()];
    let envelope = Envelope {
        message_id: "fuzz".into(),
        message_type: Some(ty.to_owned()),
        app_id: Some(name.to_owned()),
        ..Envelope::default()
    };
    let limits = Limits::default();
    let auto = adapter.map_message_using(&envelope, body, None, &limits, Decoding::Auto);
    let tree = adapter.map_message_using(&envelope, body, None, &limits, Decoding::Tree);
    if let (Ok((a, _)), Ok((t, _))) = (&auto, &tree) {
        assert_eq!(a, t, "{ty}: the projected and the whole-tree decodings disagree");
    }
}

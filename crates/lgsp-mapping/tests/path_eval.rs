//! The crate's JSONPath evaluation (the walk and `eval.rs`) against jsonpath-rust's: the same
//! nodes, in the same order, for hand-picked RFC 9535 cases and for every path of every shipped adapter at
//! every node of every sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lgsp_mapping::decode::{Format, Limits, decode};
use lgsp_mapping::dsl::path::CompiledPath;
use serde_json::{Value, json};

/// Both evaluators select exactly the same nodes (by identity) from `root`.
fn agree(path: &CompiledPath, root: &Value) -> Result<usize, String> {
    let mut ours = Vec::new();
    path.select(root, &mut ours);
    let theirs = path.select_reference(root);
    let same =
        ours.len() == theirs.len() && ours.iter().zip(&theirs).all(|(a, b)| std::ptr::eq(*a, *b));
    if same {
        Ok(ours.len())
    } else {
        Err(format!(
            "{}: ours {:?}, jsonpath-rust {:?}",
            path.source, ours, theirs
        ))
    }
}

fn every_node<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Array(a) => a.iter().for_each(|c| every_node(c, out)),
        Value::Object(m) => m.values().for_each(|c| every_node(c, out)),
        _ => {}
    }
}

fn doc() -> Value {
    json!({
        "store": {
            "book": [
                {"category": "ref", "author": "Nguyễn Du", "title": "Truyện Kiều", "price": 8.95, "isbn": "0-553"},
                {"category": "fiction", "author": "Tô Hoài", "title": "Dế Mèn", "price": 12, "tags": ["a", "b"]},
                {"category": "fiction", "author": "Nam Cao", "title": "Chí Phèo", "price": 8.95, "isbn": "0-395"},
                {"category": "KHAC:x", "author": "Vũ Trọng Phụng", "price": "22.99", "n": null}
            ],
            "bicycle": {"color": "red", "price": 399, "@id": "b1"}
        },
        "limit": 10,
        "code": "C25TAA",
        "rate": "10%",
        "empty": [],
        "mixed": [1, "1", 1.0, true, null, {"a": 1}, [1]]
    })
}

#[test]
fn hand_picked_paths_agree_with_jsonpath_rust() {
    let d = doc();
    let paths = [
        "$.store.book[?@.price < 10].title",
        "$.store.book[?@.price <= 8.95].title",
        "$.store.book[?@.price > $.limit]",
        "$.store.book[?@.price >= 12].author",
        "$.store.book[?@.price == 8.95]",
        "$.store.book[?@.price != 8.95]",
        "$.store.book[?@.isbn].title",
        "$.store.book[?!@.isbn].title",
        "$.store.book[?@.n == null].author",
        "$.store.book[?@.missing == @.also_missing].author",
        "$.store.book[?@.category == 'fiction' && @.price > 10]",
        "$.store.book[?@.category == 'ref' || @.price > 10]",
        "$.store.book[?!(@.category == 'fiction')]",
        "$.store.book[?match(@.author, 'N.*')].title",
        "$.store.book[?search(@.author, 'Cao')].title",
        "$.store.book[?match(@.author, 'Cao')].title",
        "$.store.book[?search(@.category, '^KHAC:')]",
        "$.store.book[?!search(@.category, '^KHAC:')].author",
        "$[?search($.code, '^C')].code",
        "$[?search($.code, '^K')].code",
        "$.store.book[?length(@.title) > 6].title",
        "$.store.book[?count(@.tags[*]) == 2].title",
        "$.store.book[?value(@.tags[0]) == 'a'].title",
        "$.store.book[0:2].title",
        "$.store.book[-1:].author",
        "$.store.book[::-1].author",
        "$.store.book[1:3:2]",
        "$.store.book[::0]",
        "$.store.book[5:1:-2]",
        "$.store.book[-1]",
        "$.store.book[-9]",
        "$..price",
        "$..book[1].author",
        "$..*",
        "$.store..['@id']",
        "$.store['book','bicycle']",
        "$.mixed[?@ == 1]",
        "$.mixed[?@ == '1']",
        "$.mixed[?@ == true]",
        "$.mixed[?@ == null]",
        "$.mixed[?@ < 2]",
        "$.mixed[?@.a]",
        "$.empty[?@ == 1]",
        "$.store[?@.color == 'red']",
        "$.store.book[?@.tags[?@ == 'b']].title",
        "$.rate[?@ == 1]",
        // Conditions on `$` alone (answered once for all candidates), over arrays,
        // objects, empty lists, with an inner `@` of their own, and mixed with `@`.
        "$.store.book[?$.limit == 10].title",
        "$.store.book[?$.limit == 11].title",
        "$.store[?$.code].price",
        "$.store[?!$.code].price",
        "$.store[?$.rate == '10%' || !$.rate]",
        "$.empty[?$.limit]",
        "$.store.book[?count($.store.book[?@.price > 10]) == 2].author",
        "$.store.book[?$.limit == 10 && @.price > 10].author",
        "$.store.book[?search($.code, '^C') && !search(@.category, '^KHAC:')].author",
    ];
    let mut nonempty = 0;
    for p in paths {
        let c = CompiledPath::compile(p).unwrap();
        assert!(
            !c.uses_reference_evaluator(),
            "{p} should be evaluated by the crate, not jsonpath-rust"
        );
        if agree(&c, &d).unwrap() > 0 {
            nonempty += 1;
        }
    }
    assert!(nonempty > 30, "most cases select something: {nonempty}");
}

#[test]
fn several_selectors_over_several_nodes_keep_the_rfc_order() {
    // RFC 9535 section 2.5.1.2: node by node, each selector's results in turn.
    // jsonpath-rust lists selector by selector instead; this evaluator follows the RFC.
    let d = doc();
    let c = CompiledPath::compile("$.store.book[0:2]['author','title']").unwrap();
    let mut out = Vec::new();
    c.select(&d, &mut out);
    assert_eq!(
        out,
        vec![
            &json!("Nguyễn Du"),
            &json!("Truyện Kiều"),
            &json!("Tô Hoài"),
            &json!("Dế Mèn")
        ]
    );
}

#[test]
fn literal_patterns_are_compiled_once_not_per_message() {
    // A bad literal pattern never matches, as in jsonpath-rust; the path still loads.
    let c = CompiledPath::compile("$.store.book[?match(@.author, '(')]").unwrap();
    let d = doc();
    assert_eq!(agree(&c, &d).unwrap(), 0);
}

#[path = "support/shipped.rs"]
mod shipped;
use shipped::adapters;

fn samples() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../adapters");
    let mut out = Vec::new();
    for adapter in std::fs::read_dir(&root).unwrap() {
        let dir = adapter.unwrap().path().join("samples");
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files {
            let f = f.unwrap().path();
            let format = match f.extension().and_then(|e| e.to_str()) {
                Some("xml") => Format::Xml,
                Some("json") => Format::Json,
                _ => continue,
            };
            let body = std::fs::read(&f).unwrap();
            if let Ok(v) = decode(format, &body, &Limits::default()) {
                out.push((f.display().to_string(), v));
            }
        }
    }
    out
}

#[test]
fn every_adapter_path_agrees_with_jsonpath_rust_at_every_node_of_every_sample() {
    let adapters = adapters();
    let samples = samples();
    assert!(samples.len() >= 20, "{} samples", samples.len());
    let mut filters = 0;
    let mut selected = 0;
    let mut failures = Vec::new();
    for adapter in adapters.by_name.values() {
        for name in adapter.mapping_names() {
            let program = adapter.program(name).unwrap();
            for path in program.paths() {
                if path.source.contains("[?") || path.source.contains("..") {
                    filters += 1;
                }
                assert!(
                    !path.uses_reference_evaluator(),
                    "{}: {} falls back to jsonpath-rust",
                    name,
                    path.source
                );
                for (file, v) in &samples {
                    let mut nodes = Vec::new();
                    every_node(v, &mut nodes);
                    for n in nodes {
                        // RFC 9535 names exactly; the fallback to a field's other
                        // spellings is tested on its own below.
                        match lgsp_mapping::dsl::path::exact_names(|| agree(path, n)) {
                            Ok(k) => selected += k,
                            Err(e) => failures.push(format!("{file}: {e}")),
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        filters >= 10,
        "only {filters} paths with filters or descendants"
    );
    assert!(selected > 0, "no path selected anything");
}

/// A name that is absent is read in the field's other spellings: the attribute for an
/// element and the reverse, another key style; a union of names stays exact.
#[test]
fn an_absent_name_reads_the_same_field_in_another_spelling() {
    use lgsp_mapping::dsl::path::CompiledPath;
    let tree = serde_json::json!({
        "HDon": {"@MST": "0312345678", "Ten": "Công ty A", "#text": "x"},
        "nguoi_mua": {"ma_so_thue": "0101234567", "TenDonVi": "B"},
        "Khoi": {"Nu": "47"}
    });
    let sel = |p: &str| {
        let p = CompiledPath::compile(p).unwrap();
        let mut out = Vec::new();
        p.select(&tree, &mut out);
        out.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(sel("$.HDon.MST"), vec![serde_json::json!("0312345678")]);
    assert_eq!(sel("$.HDon.@Ten"), vec![serde_json::json!("Công ty A")]);
    assert_eq!(
        sel("$.nguoiMua.maSoThue"),
        vec![serde_json::json!("0101234567")]
    );
    assert_eq!(sel("$.nguoi_mua.ten_don_vi"), vec![serde_json::json!("B")]);
    assert_eq!(sel("$.Khoi['Nu','@Nu']"), vec![serde_json::json!("47")]);
    assert!(sel("$.HDon.text").is_empty(), "#text is not a field");
    assert!(sel("$.HDon.MSTX").is_empty());
    let exact = lgsp_mapping::dsl::path::exact_names(|| sel("$.HDon.MST"));
    assert!(exact.is_empty(), "exact_names reads RFC 9535 names only");
}

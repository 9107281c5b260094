//! The sample payloads of the sector systems decode, and the paths mappings read are there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lgsp_mapping::decode::{Format, Limits, decode, sniff};
use serde_json::{Value, json};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn load(rel: &str) -> Value {
    let body = std::fs::read(corpus_dir().join(rel)).unwrap();
    let format = sniff(&body).unwrap();
    decode(format, &body, &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_corpus_file_decodes() {
    let mut seen = 0;
    for sector in std::fs::read_dir(corpus_dir()).unwrap() {
        for file in std::fs::read_dir(sector.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let expected = match path.extension().and_then(|e| e.to_str()) {
                Some("xml") => Format::Xml,
                Some("json") => Format::Json,
                _ => continue,
            };
            let body = std::fs::read(&path).unwrap();
            assert_eq!(sniff(&body), Some(expected), "{}", path.display());
            let v = decode(expected, &body, &Limits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(v.as_object().is_some_and(|o| !o.is_empty()));
            seen += 1;
        }
    }
    assert!(seen >= 25, "only {seen} corpus files found");
}

#[test]
fn einvoice_vat_basic() {
    let v = load("tax/einvoice-vat-basic.xml");
    let d = &v["HDon"]["DLHDon"];
    assert_eq!(d["@Id"], json!("HD-C25TNS-00000125"));
    assert_eq!(d["TTChung"]["KHHDon"], json!("C25TNS"));
    assert_eq!(d["TTChung"]["SHDon"], json!("125"));
    assert_eq!(d["TTChung"]["MSTTCGP"], json!("0193842257"));
    assert_eq!(d["TTChung"]["THDon"], json!("HÓA ĐƠN GIÁ TRỊ GIA TĂNG"));
    let lines = d["NDHDon"]["DSHHDVu"]["HHDVu"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["SLuong"], json!("37.5"));
    assert_eq!(lines[2]["DGia"], json!("3181818.18"));
    assert_eq!(
        d["NDHDon"]["TToan"]["THTTLTSuat"]["LTSuat"][1]["TThue"],
        json!("4049091")
    );
    assert_eq!(d["NDHDon"]["TToan"]["TgTTTBSo"], json!("174362727"));
    // A single TTin stays a single object.
    assert!(d["TTChung"]["TTKhac"]["TTin"].is_object());
    assert_eq!(
        v["HDon"]["MCCQT"]["#text"],
        json!("00B74B72A0D2316836B92CC144556D6B1F")
    );
    // The xmldsig default namespace is dropped with its declaration.
    let sig = &v["HDon"]["DSCKS"]["NBan"]["Signature"];
    assert!(sig.get("@xmlns").is_none());
    assert_eq!(sig["@Id"], json!("HD-C25TNS-00000125-sig"));
    assert_eq!(sig["SignedInfo"]["Reference"].as_array().unwrap().len(), 2);
    assert_eq!(
        sig["SignedInfo"]["CanonicalizationMethod"],
        json!({"@Algorithm": "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"})
    );
}

#[test]
fn vat_return_with_default_namespace() {
    let v = load("tax/vat-return-01gtgt.xml");
    let root = &v["HSoThueDTu"];
    assert!(root.get("@xmlns").is_none() && root.get("@xsi").is_none());
    let h = &root["HSoKhaiThue"];
    assert_eq!(h["@id"], json!("ID_1"));
    assert_eq!(
        h["TTinChung"]["TTinTKhaiThue"]["NNT"]["mst"],
        json!("4995304042")
    );
    let tk = &h["TTinChung"]["TTinTKhaiThue"]["TKhaiThue"];
    assert_eq!(tk["KyKKhaiThue"]["kyKKhai"], json!("10/2025"));
    assert_eq!(tk["KyKKhaiThue"]["kyKKhaiTuThang"], json!(""));
    assert_eq!(tk["maTKhai"], json!("01"));
    assert_eq!(h["CTieuTKhaiChinh"]["ct40"], json!("11875000"));
    assert_eq!(h["CTieuTKhaiChinh"]["ma_NganhNghe"], json!("00"));
}

#[test]
fn tdiep_envelope() {
    let v = load("tax/einvoice-tdiep-public-buyer.xml");
    let hd = &v["TDiep"]["DLieu"]["HDon"];
    assert_eq!(
        hd["DLHDon"]["NDHDon"]["NMua"]["MDVQHNSach"],
        json!("1118715")
    );
    assert!(hd.get("MCCQT").is_none());
}

#[test]
fn budget_allocation_decision() {
    let v = load("finance/budget-allocation-decision.xml");
    assert_eq!(v["QuyetDinhGiaoDuToan"]["@PhienBan"], json!("1.2"));
    let units = v["QuyetDinhGiaoDuToan"]["DanhSachDonVi"]["DonVi"]
        .as_array()
        .unwrap();
    assert_eq!(units.len(), 3);
    assert_eq!(units[0]["ChiTiet"]["Dong"][0]["@STT"], json!("1"));
    assert_eq!(
        units[0]["TenDonVi"],
        json!("Sở Giáo dục và Đào tạo tỉnh Lạng Sơn")
    );
}

#[test]
fn branch_with_single_line_of_business() {
    let v = load("bizreg/branch-registered.xml");
    let r = &v["DangKyDonViPhuThuoc"];
    assert_eq!(r["MaSoDonVi"], json!("4941209473-001"));
    assert_eq!(r["DiaChi"]["MaXa"], json!("06385"));
    assert_eq!(
        r["NganhNghe"]["Nganh"],
        json!({"@chinh": "1", "Ma": "5210", "Ten": "Kho bãi và lưu giữ hàng hóa"})
    );
}

#[test]
fn json_payloads() {
    let v = load("tax/einvoice-issued-provider.json");
    assert_eq!(v["invoice"]["number"], json!("0000457"));
    assert_eq!(v["invoice"]["seller"]["taxCode"], json!("4941209473"));
    assert_eq!(v["invoice"]["items"][0]["lineNo"], json!(1));

    let v = load("emis/school-profile.json");
    assert_eq!(v["maTruong"], json!("20186301"));
    assert_eq!(v["viDo"].to_string(), "21.6748");

    let v = load("finance/public-assets.json");
    assert_eq!(v["tai_san"][1]["dien_tich_dat_m2"].to_string(), "12450.0");
    assert_eq!(v["tai_san"][0]["dien_tich_san_m2"].to_string(), "1385.6");

    let v = load("finance/budget-allocation-schools.json");
    assert_eq!(v["tong_cong"].to_string(), "33726050000");
}

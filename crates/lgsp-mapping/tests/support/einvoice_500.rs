//! A generated VAT e-invoice (bare `HDon`, VND) of 500 lines whose amounts add up exactly:
//! four rates, unit prices with decimals (line amounts rounded to the đồng), a trade
//! discount line every 50 lines and a note at the end. Shared by the test and the bench.

#![allow(dead_code)] // the test and the bench each read part of `Generated`

use rust_decimal::{Decimal, RoundingStrategy};

/// The number of lines of the generated invoice.
pub const LINES: usize = 500;

/// The generated XML and the totals it states.
pub struct Generated {
    pub xml: String,
    pub total_before_vat: i64,
    pub total_vat: i64,
    pub total_payable: i64,
}

fn dong(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
}

fn int(d: Decimal) -> i64 {
    d.mantissa() as i64 / 10i64.pow(d.scale())
}

/// Build the invoice: rates, quantities and prices vary with the line number.
pub fn generate() -> Generated {
    const RATES: [(&str, i64); 4] = [("0%", 0), ("5%", 5), ("8%", 8), ("10%", 10)];
    let mut base = [Decimal::ZERO; 4];
    let mut lines = String::with_capacity(LINES * 300);
    for n in 1..=LINES {
        let r = n % RATES.len();
        let (code, _) = RATES[r];
        if n == LINES {
            lines.push_str(&format!(
                "<HHDVu><TChat>4</TChat><STT>{n}</STT><THHDVu>Hàng giao theo hợp đồng số {n}/2025/HĐMB</THHDVu></HHDVu>"
            ));
        } else if n % 50 == 0 {
            // Trade discount: subtracted from its rate group.
            let amount = Decimal::from(1000 * (n as i64 / 50));
            base[r] -= amount;
            lines.push_str(&format!(
                "<HHDVu><TChat>3</TChat><STT>{n}</STT><THHDVu>Chiết khấu thương mại đợt {n}</THHDVu><STCKhau>{amount}</STCKhau><ThTien>{amount}</ThTien><TSuat>{code}</TSuat></HHDVu>"
            ));
        } else {
            let quantity =
                Decimal::new(1 + (n as i64 * 7) % 40, 0) + Decimal::new((n as i64 % 4) * 25, 2);
            let price = Decimal::new(1_000_000 + (n as i64 * 7919) % 90_000_000, 2);
            let amount = dong(quantity * price);
            base[r] += amount;
            lines.push_str(&format!(
                "<HHDVu><TChat>1</TChat><STT>{n}</STT><MHHDVu>HH-{n:04}</MHHDVu><THHDVu>Hàng hóa số {n} (dược liệu, nông sản)</THHDVu><DVTinh>kg</DVTinh><SLuong>{quantity}</SLuong><DGia>{price}</DGia><ThTien>{amount}</ThTien><TSuat>{code}</TSuat></HHDVu>"
            ));
        }
    }
    let mut groups = String::new();
    let (mut total_before_vat, mut total_vat) = (Decimal::ZERO, Decimal::ZERO);
    for (r, (code, percent)) in RATES.iter().enumerate() {
        let vat = dong(base[r] * Decimal::from(*percent) / Decimal::from(100));
        total_before_vat += base[r];
        total_vat += vat;
        groups.push_str(&format!(
            "<LTSuat><TSuat>{code}</TSuat><ThTien>{}</ThTien><TThue>{vat}</TThue></LTSuat>",
            base[r]
        ));
    }
    let total_payable = total_before_vat + total_vat;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<HDon><DLHDon Id="HD-C25TLN-00000500"><TTChung><PBan>2.0.1</PBan><THDon>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</THDon><KHMSHDon>1</KHMSHDon><KHHDon>C25TLN</KHHDon><SHDon>500</SHDon><NLap>2025-11-14</NLap><DVTTe>VND</DVTTe><TGia>1</TGia><HTTToan>CK</HTTToan></TTChung>
<NDHDon><NBan><Ten>CÔNG TY CỔ PHẦN NÔNG SẢN HỒI QUẾ NA SẦM</Ten><MST>4995304042</MST><DChi>Thôn Pò Mới, Xã Na Sầm, Tỉnh Lạng Sơn</DChi></NBan><NMua><Ten>CÔNG TY CỔ PHẦN XUẤT NHẬP KHẨU DƯỢC LIỆU THĂNG LONG XANH</Ten><MST>0138927742</MST><DChi>Số 56 phố Lý Nam Đế, Phường Hoàn Kiếm, Thành phố Hà Nội</DChi></NMua>
<DSHHDVu>{lines}</DSHHDVu>
<TToan><THTTLTSuat>{groups}</THTTLTSuat><TgTCThue>{total_before_vat}</TgTCThue><TgTThue>{total_vat}</TgTThue><TTCKTMai>0</TTCKTMai><TgTTTBSo>{total_payable}</TgTTTBSo><TgTTTBChu>Số tiền bằng chữ</TgTTTBChu></TToan></NDHDon></DLHDon></HDon>
"#
    );
    Generated {
        xml,
        total_before_vat: int(total_before_vat),
        total_vat: int(total_vat),
        total_payable: int(total_payable),
    }
}

use super::*;

#[test]
fn line_col_counts_characters() {
    let body = "ab\nxyz".as_bytes();
    assert_eq!(line_col(body, 0), (1, 1));
    assert_eq!(line_col(body, 3), (2, 1));
    assert_eq!(line_col(body, 5), (2, 3));
}

//! Money: amounts are integers in minor units plus an ISO 4217 currency, as
//! the contract writes them; this is how a person reads one.

/// `minor` units of `currency` in major units with thousands separators,
/// e.g. `50,000 VND` or `2.50 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    // ISO 4217 minor-unit exponents that are not 2.
    let exponent: u32 = match currency {
        "VND" | "JPY" | "KRW" | "CLP" | "ISK" | "PYG" | "UGX" | "XAF" | "XOF" | "IDR" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    };
    let scale = 10i64.pow(exponent);
    let (whole, frac) = (minor.abs() / scale, minor.abs() % scale);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if minor < 0 { "-" } else { "" };
    if exponent == 0 {
        format!("{sign}{grouped} {currency}")
    } else {
        format!(
            "{sign}{grouped}.{frac:0width$} {currency}",
            width = exponent as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(money(50_000, "VND"), "50,000 VND");
        assert_eq!(money(1_234_567, "EUR"), "12,345.67 EUR");
        assert_eq!(money(-250, "USD"), "-2.50 USD");
        assert_eq!(money(1_500, "KWD"), "1.500 KWD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
    }
}

//! Money is an integer number of minor units of the programme's one currency, never a float.

use crate::limits::AMOUNT_MINOR_MAX;
use crate::{FieldError, FieldErrorCode};

/// An ISO 4217 currency with the number of digits of its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// The minor-unit digits of the currencies a programme can name without saying them.
/// A currency missing here is still usable: the programme then states `minor_units`.
const KNOWN_CURRENCIES: &[(&str, u8)] = &[
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("IDR", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PHP", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TWD", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
    ("BHD", 3),
    ("KWD", 3),
    ("JOD", 3),
];

impl Currency {
    /// Parses a three-letter code; `minor_units` overrides or supplies the digits.
    pub fn parse(code: &str, minor_units: Option<u8>) -> Result<Self, String> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(format!("`{code}` is not a three-letter ISO 4217 code"));
        }
        let known = KNOWN_CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| *d);
        let minor_units = match (minor_units, known) {
            (Some(d), _) if d > 4 => return Err(format!("minor_units {d} is more than 4")),
            (Some(d), _) => d,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(format!(
                    "currency `{code}` is not known to Tessera: state `minor_units`"
                ))
            }
        };
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            minor_units,
        })
    }

    pub fn code(&self) -> &str {
        // The constructor only accepts ASCII upper-case letters.
        std::str::from_utf8(&self.code).expect("currency code is ASCII")
    }

    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }
}

/// A non-negative amount in minor units (cents, fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AmountMinor(i64);

impl AmountMinor {
    pub const ZERO: AmountMinor = AmountMinor(0);

    pub fn parse(value: i64) -> Result<Self, FieldError> {
        if value < 0 {
            return Err(FieldError::invalid("", "must not be negative"));
        }
        if value > AMOUNT_MINOR_MAX {
            return Err(FieldError::invalid(
                "",
                format!("must be at most {AMOUNT_MINOR_MAX}"),
            ));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: AmountMinor) -> Result<AmountMinor, FieldError> {
        self.0
            .checked_add(other.0)
            .map(AmountMinor)
            .ok_or_else(overflow)
    }

    pub fn checked_mul(self, factor: u32) -> Result<AmountMinor, FieldError> {
        self.0
            .checked_mul(i64::from(factor))
            .map(AmountMinor)
            .ok_or_else(overflow)
    }
}

fn overflow() -> FieldError {
    FieldError::new(
        FieldErrorCode::AmountOverflow,
        "",
        "amount does not fit in 64 bits",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies() {
        let cases: &[(&str, Option<u8>, Result<u8, ()>)] = &[
            ("CNY", None, Ok(2)),
            ("JPY", None, Ok(0)),
            ("XTS", Some(2), Ok(2)),
            ("XTS", None, Err(())),
            ("cny", None, Err(())),
            ("CNYY", None, Err(())),
            ("USD", Some(9), Err(())),
        ];
        for (code, digits, expected) in cases {
            let got = Currency::parse(code, *digits)
                .map(|c| c.minor_units())
                .map_err(|_| ());
            assert_eq!(got, *expected, "{code} {digits:?}");
        }
    }

    #[test]
    fn amounts_refuse_negative_and_overflow() {
        assert!(AmountMinor::parse(-1).is_err());
        assert!(AmountMinor::parse(AMOUNT_MINOR_MAX + 1).is_err());
        let max = AmountMinor::parse(AMOUNT_MINOR_MAX).unwrap();
        let big = AmountMinor(i64::MAX);
        assert_eq!(
            big.checked_add(max).unwrap_err().code,
            FieldErrorCode::AmountOverflow
        );
        assert_eq!(
            big.checked_mul(2).unwrap_err().code,
            FieldErrorCode::AmountOverflow
        );
        assert_eq!(
            max.checked_mul(10_000).unwrap().get(),
            AMOUNT_MINOR_MAX * 10_000
        );
        assert_eq!(
            AmountMinor::parse(250)
                .unwrap()
                .checked_mul(3)
                .unwrap()
                .get(),
            750
        );
    }
}

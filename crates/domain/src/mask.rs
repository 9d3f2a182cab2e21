//! Every mask style the API surfaces show, from one place, under one disclosure budget.
//!
//! No style reveals more than [`MAX_REVEALED`] characters of a secret, nor more than a quarter
//! of it: a 12-character key shows at most 3 characters, a 3-character key none.

use serde::{Deserialize, Serialize};

/// Most characters of a secret any mask reveals.
pub const MAX_REVEALED: usize = 8;

/// Marker placed between a revealed head and tail.
const ELLIPSIS: &str = "...";
/// Marker for a masked remainder.
const STARS: &str = "***";

/// Well-known public key prefixes, longest first (they identify the vendor, not the key).
const VENDOR_PREFIXES: &[&str] = &[
    "sk-ant-api03-",
    "sk-svcacct-",
    "sk-or-v1-",
    "sk-proj-",
    "sk-ant-",
    "sk-or-",
    "pplx-",
    "AIza",
    "xai-",
    "gsk_",
    "sk-",
];

/// The mask styles of the API surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaskStyle {
    /// `abcd` — the last four characters (user BYOK API `api_key_last_4`).
    Last4,
    /// `sk-...cdef` — first three, ellipsis, last four (provider keys API `key_hint`).
    Lead3Last4,
    /// `sk-ant-...XXXX` — vendor prefix, ellipsis, last four (admin API `api_key_masked`).
    VendorLast4,
    /// `sk-p...Yx4f` — first four, ellipsis, last four (application settings API).
    First4Last4,
    /// `sk-***` — vendor prefix and stars (provider configuration API).
    PrefixStars,
}

impl MaskStyle {
    /// Every style.
    pub const ALL: [MaskStyle; 5] = [
        Self::Last4,
        Self::Lead3Last4,
        Self::VendorLast4,
        Self::First4Last4,
        Self::PrefixStars,
    ];
}

/// How many characters of a secret of `len` characters any mask may reveal.
pub fn reveal_budget(len: usize) -> usize {
    MAX_REVEALED.min(len / 4)
}

fn head(chars: &[char], n: usize) -> String {
    chars[..n].iter().collect()
}

fn tail(chars: &[char], n: usize) -> String {
    chars[chars.len() - n..].iter().collect()
}

/// The longest vendor prefix of `secret` that fits in `room` characters.
fn vendor_prefix(secret: &str, room: usize) -> Option<&'static str> {
    VENDOR_PREFIXES
        .iter()
        .copied()
        .filter(|p| p.chars().count() <= room)
        .find(|p| secret.starts_with(p))
}

/// Masks a secret in one style.
pub fn mask(secret: &str, style: MaskStyle) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let budget = reveal_budget(chars.len());
    let tail_len = 4.min(budget);
    let room = budget - tail_len;
    match style {
        MaskStyle::Last4 => tail(&chars, tail_len),
        MaskStyle::Lead3Last4 => {
            format!(
                "{}{ELLIPSIS}{}",
                head(&chars, 3.min(room)),
                tail(&chars, tail_len)
            )
        }
        MaskStyle::VendorLast4 => {
            let lead = vendor_prefix(secret, room)
                .map(str::to_owned)
                .unwrap_or_else(|| head(&chars, 3.min(room)));
            format!("{lead}{ELLIPSIS}{}", tail(&chars, tail_len))
        }
        MaskStyle::First4Last4 => {
            format!(
                "{}{ELLIPSIS}{}",
                head(&chars, 4.min(room)),
                tail(&chars, tail_len)
            )
        }
        MaskStyle::PrefixStars => {
            format!("{}{STARS}", vendor_prefix(secret, budget).unwrap_or(""))
        }
    }
}

/// Whether a value has the shape of a mask rather than a real key.
pub fn looks_masked(value: &str) -> bool {
    value.contains(ELLIPSIS)
        || value.contains(STARS)
        || value.contains('\u{2026}')
        || value.contains('\u{2022}')
}

/// Every mask of one secret, computed when it is written so listing never decrypts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHints {
    pub last4: String,
    pub lead3_last4: String,
    pub vendor_last4: String,
    pub first4_last4: String,
    pub prefix_stars: String,
}

impl SecretHints {
    /// Computes every hint of a secret.
    pub fn of(secret: &str) -> Self {
        Self {
            last4: mask(secret, MaskStyle::Last4),
            lead3_last4: mask(secret, MaskStyle::Lead3Last4),
            vendor_last4: mask(secret, MaskStyle::VendorLast4),
            first4_last4: mask(secret, MaskStyle::First4Last4),
            prefix_stars: mask(secret, MaskStyle::PrefixStars),
        }
    }

    /// The hint of one style.
    pub fn get(&self, style: MaskStyle) -> &str {
        match style {
            MaskStyle::Last4 => &self.last4,
            MaskStyle::Lead3Last4 => &self.lead3_last4,
            MaskStyle::VendorLast4 => &self.vendor_last4,
            MaskStyle::First4Last4 => &self.first4_last4,
            MaskStyle::PrefixStars => &self.prefix_stars,
        }
    }

    /// Whether `value` is one of the hints handed out for this secret: a mask of any style,
    /// or the bare last-4 hint (which the user API shows as `api_key_last_4`).
    pub fn is_handed_out_mask(&self, value: &str) -> bool {
        !value.is_empty() && MaskStyle::ALL.iter().any(|s| self.get(*s) == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ANTHROPIC: &str = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpXXXX";

    #[test]
    fn seed_styles() {
        let openai = "sk-proj-abcdefghijklmnopqrstuvwxYx4f";
        assert_eq!(mask(openai, MaskStyle::Last4), "Yx4f");
        assert_eq!(mask(openai, MaskStyle::Lead3Last4), "sk-...Yx4f");
        assert_eq!(mask(openai, MaskStyle::First4Last4), "sk-p...Yx4f");
        assert_eq!(mask(openai, MaskStyle::PrefixStars), "sk-proj-***");
        assert_eq!(mask(openai, MaskStyle::VendorLast4), "sk-...Yx4f");
        assert_eq!(
            mask(
                "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123",
                MaskStyle::VendorLast4
            ),
            "AIza...0123"
        );
        assert_eq!(mask(ANTHROPIC, MaskStyle::VendorLast4), "sk-...XXXX");
        assert_eq!(
            mask(
                "sk-0123456789abcdef0123456789abcdef",
                MaskStyle::PrefixStars
            ),
            "sk-***"
        );
    }

    #[test]
    fn short_secrets_reveal_less() {
        assert_eq!(mask("abcdefghijkl", MaskStyle::Last4), "jkl");
        assert_eq!(mask("abcdefghijkl", MaskStyle::First4Last4), "...jkl");
        assert_eq!(mask("abc", MaskStyle::Last4), "");
        assert_eq!(mask("abc", MaskStyle::Lead3Last4), "...");
        assert_eq!(mask("sk-abc", MaskStyle::PrefixStars), "***");
        assert_eq!(mask("", MaskStyle::First4Last4), "...");
    }

    #[test]
    fn round_trip_recognition() {
        let hints = SecretHints::of(ANTHROPIC);
        assert!(hints.is_handed_out_mask(&hints.vendor_last4));
        assert!(hints.is_handed_out_mask(&hints.first4_last4));
        assert!(
            hints.is_handed_out_mask(&hints.last4),
            "the bare last-4 hint is handed out too"
        );
        assert!(!SecretHints::of("abc").is_handed_out_mask(""));
        assert!(!hints.is_handed_out_mask("sk-...YYYY"));
        assert!(looks_masked("sk-...YYYY"));
        assert!(looks_masked("sk-***"));
        assert!(!looks_masked(ANTHROPIC));
    }

    /// Characters of the secret visible in a mask: the mask minus its markers.
    fn revealed(masked: &str) -> usize {
        masked
            .replacen(ELLIPSIS, "", 1)
            .replacen(STARS, "", 1)
            .chars()
            .count()
    }

    fn secrets() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,120}",
            "[A-Za-z0-9_-]{0,200}",
            "(sk-ant-api03-|sk-proj-|sk-|AIza|xai-|gsk_)[A-Za-z0-9]{0,120}",
        ]
    }

    proptest! {
        #[test]
        fn no_style_reveals_more_than_the_budget(secret in secrets()) {
            let len = secret.chars().count();
            for style in MaskStyle::ALL {
                let m = mask(&secret, style);
                let shown = revealed(&m);
                prop_assert!(shown <= MAX_REVEALED, "{style:?} shows {shown}");
                prop_assert!(shown * 4 <= len, "{style:?} shows {shown} of {len}");
            }
        }

        #[test]
        fn revealed_parts_are_the_secret_ends(secret in "[^.]{0,120}") {
            let m = mask(&secret, MaskStyle::First4Last4);
            let (lead, rest) = m.split_once(ELLIPSIS).unwrap();
            prop_assert!(secret.starts_with(lead));
            prop_assert!(secret.ends_with(rest));
            let last4 = mask(&secret, MaskStyle::Last4);
            prop_assert!(secret.ends_with(&last4));
        }

        #[test]
        fn a_real_key_is_never_mistaken_for_its_mask(secret in "[A-Za-z0-9_-]{1,120}") {
            let hints = SecretHints::of(&secret);
            prop_assert!(!hints.is_handed_out_mask(&secret));
        }
    }
}

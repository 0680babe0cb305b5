//! G.711 μ-law (PCMU) and A-law (PCMA) companding of 16-bit linear samples.
//!
//! This is the ITU segment algorithm in the form of the public-domain Sun reference
//! (`g711.c`): μ-law works on 14-bit magnitudes, A-law on 13-bit, so the low bits of an
//! `i16` are dropped before encoding. Decoding uses tables built at compile time.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Encodes one sample as μ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS >> 2;
    let seg = segment(pcm, &ULAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0x0F);
    (code ^ mask) as u8
}

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { ULAW_BIAS - t } else { t - ULAW_BIAS }) as i16
}

/// Encodes one sample as A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        // One's complement keeps the negative range symmetric with the positive one.
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &ALAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut code = (seg as i32) << 4;
    code |= if seg < 2 { (pcm >> 1) & 0x0F } else { (pcm >> seg) & 0x0F };
    (code ^ mask) as u8
}

const fn alaw_decode(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_table(ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if ulaw { ulaw_decode(i as u8) } else { alaw_decode(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(true);
static ALAW_TABLE: [i16; 256] = build_table(false);

/// Decodes one μ-law byte.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Decodes one A-law byte.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encodes samples as μ-law, one byte each.
pub fn encode_ulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| linear_to_ulaw(s)).collect()
}

/// Decodes μ-law bytes.
pub fn decode_ulaw(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|&c| ulaw_to_linear(c)).collect()
}

/// Encodes samples as A-law, one byte each.
pub fn encode_alaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| linear_to_alaw(s)).collect()
}

/// Decodes A-law bytes.
pub fn decode_alaw(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|&c| alaw_to_linear(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_codes() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
    }

    #[test]
    fn known_values() {
        // Extremes and a few reference points from the Sun tables.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
    }

    #[test]
    fn alaw_round_trips_all_codes() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn ulaw_round_trips_all_codes_but_negative_zero() {
        for code in 0..=255u8 {
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), expect, "code {code:#04x}");
        }
        // 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
        assert_eq!(ulaw_to_linear(0x7F), 0);
    }

    #[test]
    fn decode_tables_are_monotonic_and_symmetric() {
        // Sorting codes by magnitude: the positive half (0x80..=0xFF for μ-law) decreases.
        for code in 0x81..=0xFFu8 {
            assert!(ulaw_to_linear(code) < ulaw_to_linear(code - 1));
            assert_eq!(ulaw_to_linear(code), -ulaw_to_linear(code & 0x7F));
        }
        for code in 0..=255u8 {
            assert_eq!(alaw_to_linear(code), -alaw_to_linear(code ^ 0x80));
        }
    }

    #[test]
    fn quantization_error_is_bounded() {
        // Step size doubles per segment, so the error stays under ~1/16 of the magnitude;
        // beyond the largest code the error is the clipping distance.
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(s)) as i32;
            let a = alaw_to_linear(linear_to_alaw(s)) as i32;
            let s = s as i32;
            let tol = s.abs() / 16 + 8;
            assert!((u - s).abs() <= tol.max(s.abs() - 32124), "ulaw {s} -> {u}");
            assert!((a - s).abs() <= tol.max(s.abs() - 32256), "alaw {s} -> {a}");
        }
    }

    #[test]
    fn slice_helpers() {
        let samples = [0i16, 1000, -1000, 32767, -32768];
        let u = encode_ulaw(&samples);
        let a = encode_alaw(&samples);
        assert_eq!(u.len(), 5);
        assert_eq!(a[0], 0xD5);
        let du = decode_ulaw(&u);
        let da = decode_alaw(&a);
        assert_eq!(du.len(), 5);
        assert_eq!(du[0], 0);
        assert!((du[1] - 1000).abs() < 40 && (du[2] + 1000).abs() < 40);
        assert!((da[1] - 1000).abs() < 40 && (da[2] + 1000).abs() < 40);
        assert!(decode_ulaw(&[]).is_empty());
    }
}

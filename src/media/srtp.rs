//! SRTP and SRTCP (RFC 3711) with SDES keying (RFC 4568), sans-IO.
//!
//! Suites: `AES_CM_128_HMAC_SHA1_80` (offered) and `AES_CM_128_HMAC_SHA1_32` (accepted
//! when a peer prefers it). Session keys are derived once per master key (key derivation
//! rate 0, no MKI), the rollover counter is estimated per SSRC as in RFC 3711 Appendix A,
//! and a 64-packet replay window guards each SSRC. A [`SrtpContext`] serves one
//! direction: one with our key protects what we send, one with the peer's key unprotects
//! what we receive.

use aes::Aes128;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ctr::cipher::{InnerIvInit, KeyInit, KeyIvInit, StreamCipher, StreamCipherCoreWrapper};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use std::fmt;

type HmacSha1 = Hmac<Sha1>;
type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// Master key length (AES-128).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length.
pub const MASTER_SALT_LEN: usize = 14;
/// SRTCP authentication tag length (always 80 bits for these suites).
const RTCP_TAG_LEN: usize = 10;
/// Packets of replay history per SSRC.
const REPLAY_WINDOW: u64 = 64;

/// SRTP policy of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpMode {
    /// Plain RTP only; SAVP offers are refused (488), `a=crypto` on AVP is ignored.
    #[default]
    Off,
    /// Offer RTP/AVP with `a=crypto` (best effort); use SRTP whenever the peer keys it.
    Optional,
    /// Offer RTP/SAVP; refuse calls without SRTP.
    Mandatory,
}

impl SrtpMode {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpMode::Off => "off",
            SrtpMode::Optional => "optional",
            SrtpMode::Mandatory => "mandatory",
        }
    }
}

impl fmt::Display for SrtpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SrtpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [SrtpMode::Off, SrtpMode::Optional, SrtpMode::Mandatory]
            .into_iter()
            .find(|m| s.eq_ignore_ascii_case(m.as_str()))
            .ok_or_else(|| format!("{s:?} is not off, optional or mandatory"))
    }
}

/// A crypto suite we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// The SDES name.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Looks up an SDES suite name.
    pub fn from_name(name: &str) -> Option<Self> {
        [CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| name.eq_ignore_ascii_case(s.name()))
    }

    /// Length of the SRTP authentication tag in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key followed by its master salt (30 bytes), as carried by `inline:`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey(pub [u8; MASTER_KEY_LEN + MASTER_SALT_LEN]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never log key material.
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key and salt.
    pub fn random() -> Self {
        use rand::Rng;
        let mut k = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        rand::rng().fill(&mut k[..]);
        MasterKey(k)
    }

    /// Builds a key from its key and salt halves.
    pub fn from_parts(key: &[u8; MASTER_KEY_LEN], salt: &[u8; MASTER_SALT_LEN]) -> Self {
        let mut k = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        k[..MASTER_KEY_LEN].copy_from_slice(key);
        k[MASTER_KEY_LEN..].copy_from_slice(salt);
        MasterKey(k)
    }

    /// The AES master key.
    pub fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LEN]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LEN..]
    }

    /// Base64 as in `inline:` (40 characters).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses `inline:` key material; must be exactly 30 bytes.
    pub fn from_base64(s: &str) -> Option<Self> {
        let bytes = STANDARD.decode(s).or_else(|_| STANDARD_NO_PAD.decode(s)).ok()?;
        Some(MasterKey(bytes.try_into().ok()?))
    }
}

/// One `a=crypto` line (RFC 4568 §9.1) that we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag that pairs an answer with the offered line.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// The sender's master key and salt.
    pub key: MasterKey,
}

/// Why an `a=crypto` line is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoAttrError {
    /// Not `tag suite key-params`.
    #[error("malformed a=crypto")]
    Malformed,
    /// A suite we do not implement.
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// Several keys, an MKI, or a key that is not 30 bytes of base64.
    #[error("unsupported key parameters")]
    UnsupportedKey,
    /// Session parameters (UNENCRYPTED_SRTP, KDR, ...) change the transform.
    #[error("unsupported session parameters")]
    UnsupportedSessionParams,
}

impl CryptoAttr {
    /// Parses the value of an `a=crypto:` attribute (without the `crypto:` name).
    pub fn parse(value: &str) -> Result<Self, CryptoAttrError> {
        let mut parts = value.split_ascii_whitespace();
        let tag = parts.next().and_then(|t| t.parse::<u32>().ok()).ok_or(CryptoAttrError::Malformed)?;
        let suite_name = parts.next().ok_or(CryptoAttrError::Malformed)?;
        let suite = CryptoSuite::from_name(suite_name)
            .ok_or_else(|| CryptoAttrError::UnsupportedSuite(suite_name.to_string()))?;
        let key_params = parts.next().ok_or(CryptoAttrError::Malformed)?;
        if parts.next().is_some() {
            return Err(CryptoAttrError::UnsupportedSessionParams);
        }
        if key_params.contains(';') {
            return Err(CryptoAttrError::UnsupportedKey);
        }
        let inline = key_params.strip_prefix("inline:").ok_or(CryptoAttrError::UnsupportedKey)?;
        let mut fields = inline.split('|');
        let key = fields.next().and_then(MasterKey::from_base64).ok_or(CryptoAttrError::UnsupportedKey)?;
        for f in fields {
            // A lifetime (`2^31` or a number) is fine; an MKI (`1:4`) is not supported.
            if f.contains(':') {
                return Err(CryptoAttrError::UnsupportedKey);
            }
        }
        Ok(CryptoAttr { tag, suite, key })
    }
}

impl fmt::Display for CryptoAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} inline:{}", self.tag, self.suite.name(), self.key.to_base64())
    }
}

/// What SRTP needs after offer/answer: the suite and both directions' master keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpParams {
    /// The agreed suite.
    pub suite: CryptoSuite,
    /// Our key: protects what we send.
    pub local_key: MasterKey,
    /// The peer's key: unprotects what we receive.
    pub remote_key: MasterKey,
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than a header plus a tag, or not RTP version 2.
    #[error("packet too short or malformed")]
    Malformed,
    /// The authentication tag does not match.
    #[error("authentication failed")]
    AuthFailed,
    /// Already received, or older than the replay window.
    #[error("replayed packet")]
    Replayed,
}

/// RFC 3711 §4.3.1 key derivation with kdr = 0: AES-CM keystream of the master key
/// at IV = (master salt XOR label·2^48)·2^16, truncated to `len`.
pub fn derive_session_key(master: &MasterKey, label: u8, len: usize) -> Vec<u8> {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master.salt());
    iv[7] ^= label;
    let mut out = vec![0u8; len];
    let mut c = Aes128Ctr::new(master.key().into(), &iv.into());
    c.apply_keystream(&mut out);
    out
}

/// The AES-CM IV for a packet: (k_s·2^16) XOR (SSRC·2^64) XOR (index·2^16).
fn packet_iv(salt: &[u8; MASTER_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// Session keys for one of RTP or RTCP.
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    mac: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &MasterKey, base_label: u8) -> Self {
        let enc = derive_session_key(master, base_label, 16);
        let auth = derive_session_key(master, base_label + 1, 20);
        let salt = derive_session_key(master, base_label + 2, MASTER_SALT_LEN);
        SessionKeys {
            cipher: <Aes128 as KeyInit>::new_from_slice(&enc).expect("16-byte key"),
            salt: salt.try_into().expect("14-byte salt"),
            mac: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes any key length"),
        }
    }

    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let iv = packet_iv(&self.salt, ssrc, index);
        let core = ctr::CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut c = StreamCipherCoreWrapper::from_core(core);
        c.apply_keystream(data);
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.verify_truncated_left(tag).is_ok()
    }
}

/// A 64-entry sliding window over 48-bit (SRTP) or 31-bit (SRTCP) packet indexes.
#[derive(Debug, Clone, Copy, Default)]
struct ReplayWindow {
    top: Option<u64>,
    /// Bit i set: index `top - i` was accepted.
    mask: u64,
}

impl ReplayWindow {
    fn check(&self, index: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if index > top => true,
            Some(top) => {
                let age = top - index;
                age < REPLAY_WINDOW && (self.mask >> age) & 1 == 0
            }
        }
    }

    fn accept(&mut self, index: u64) {
        match self.top {
            None => {
                self.top = Some(index);
                self.mask = 1;
            }
            Some(top) if index > top => {
                let shift = index - top;
                self.mask = if shift >= REPLAY_WINDOW { 0 } else { self.mask << shift };
                self.mask |= 1;
                self.top = Some(index);
            }
            Some(top) => self.mask |= 1 << (top - index),
        }
    }
}

/// Per-SSRC SRTP state: rollover counter, highest sequence number, replay window.
#[derive(Debug, Clone, Copy, Default)]
struct StreamState {
    roc: u32,
    s_l: u16,
    started: bool,
    replay: ReplayWindow,
    rtcp_replay: ReplayWindow,
}

impl StreamState {
    /// RFC 3711 Appendix A: the ROC guess `v` for `seq`.
    fn guess(&self, seq: u16) -> u32 {
        if !self.started {
            return self.roc;
        }
        if self.s_l < 32768 {
            if i32::from(seq) - i32::from(self.s_l) > 32768 { self.roc.wrapping_sub(1) } else { self.roc }
        } else if i32::from(self.s_l) - 32768 > i32::from(seq) {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    fn update(&mut self, v: u32, seq: u16) {
        if !self.started {
            self.started = true;
            self.roc = v;
            self.s_l = seq;
        } else if v == self.roc.wrapping_add(1) {
            self.roc = v;
            self.s_l = seq;
        } else if v == self.roc && seq > self.s_l {
            self.s_l = seq;
        }
    }
}

fn index_of(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

/// Length of the RTP header including CSRCs and the extension.
fn rtp_header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let ext = p.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= p.len()).then_some(len)
}

/// One direction of SRTP/SRTCP under one master key.
#[derive(Clone)]
pub struct SrtpContext {
    suite: CryptoSuite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: HashMap<u32, StreamState>,
    /// Next SRTCP index per SSRC we send.
    rtcp_out: HashMap<u32, u32>,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context for `suite` keyed with `master`.
    pub fn new(suite: CryptoSuite, master: &MasterKey) -> Self {
        SrtpContext {
            suite,
            rtp: SessionKeys::derive(master, 0),
            rtcp: SessionKeys::derive(master, 3),
            streams: HashMap::new(),
            rtcp_out: HashMap::new(),
        }
    }

    /// The suite in use.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Encrypts and authenticates an RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let hdr = rtp_header_len(packet).ok_or(SrtpError::Malformed)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let st = self.streams.entry(ssrc).or_default();
        let v = st.guess(seq);
        st.update(v, seq);
        let mut out = Vec::with_capacity(packet.len() + self.suite.rtp_tag_len());
        out.extend_from_slice(packet);
        self.rtp.crypt(ssrc, index_of(v, seq), &mut out[hdr..]);
        let tag = self.rtp.tag(&[&out, &v.to_be_bytes()]);
        out.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        Ok(out)
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let body_len = packet.len().checked_sub(tag_len).ok_or(SrtpError::Malformed)?;
        let (body, tag) = packet.split_at(body_len);
        let hdr = rtp_header_len(body).ok_or(SrtpError::Malformed)?;
        let seq = u16::from_be_bytes([body[2], body[3]]);
        let ssrc = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
        let mut st = self.streams.get(&ssrc).copied().unwrap_or_default();
        let v = st.guess(seq);
        let index = index_of(v, seq);
        if !st.replay.check(index) {
            return Err(SrtpError::Replayed);
        }
        if !self.rtp.verify(&[body, &v.to_be_bytes()], tag) {
            return Err(SrtpError::AuthFailed);
        }
        st.update(v, seq);
        st.replay.accept(index);
        self.streams.insert(ssrc, st);
        let mut out = body.to_vec();
        self.rtp.crypt(ssrc, index, &mut out[hdr..]);
        Ok(out)
    }

    /// Encrypts and authenticates a (compound) RTCP packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let counter = self.rtcp_out.entry(ssrc).or_insert(0);
        let index = *counter;
        *counter = (*counter + 1) & 0x7fff_ffff;
        let mut out = Vec::with_capacity(packet.len() + 4 + RTCP_TAG_LEN);
        out.extend_from_slice(packet);
        self.rtcp.crypt(ssrc, u64::from(index), &mut out[8..]);
        out.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[&out]);
        out.extend_from_slice(&tag[..RTCP_TAG_LEN]);
        Ok(out)
    }

    /// Authenticates, replay-checks and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 + 4 + RTCP_TAG_LEN || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let (authed, tag) = packet.split_at(packet.len() - RTCP_TAG_LEN);
        if !self.rtcp.verify(&[authed], tag) {
            return Err(SrtpError::AuthFailed);
        }
        let (body, e_index) = authed.split_at(authed.len() - 4);
        let e_index = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let index = u64::from(e_index & 0x7fff_ffff);
        let ssrc = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        let st = self.streams.entry(ssrc).or_default();
        if !st.rtcp_replay.check(index) {
            return Err(SrtpError::Replayed);
        }
        st.rtcp_replay.accept(index);
        let mut out = body.to_vec();
        if e_index & 0x8000_0000 != 0 {
            self.rtcp.crypt(ssrc, index, &mut out[8..]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        MasterKey::from_parts(&hex(key).try_into().unwrap(), &hex(salt).try_into().unwrap())
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let m = master("E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6");
        assert_eq!(derive_session_key(&m, 0, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(derive_session_key(&m, 2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            derive_session_key(&m, 1, 94),
            hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2")
        );
    }

    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let keys = SessionKeys {
            cipher: <Aes128 as KeyInit>::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap(),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            mac: <HmacSha1 as Mac>::new_from_slice(b"x").unwrap(),
        };
        // Encrypting zeros gives the keystream: ROC 0, SEQ 0, SSRC 0.
        let mut ks = vec![0u8; 16 * 0xff02];
        keys.crypt(0, 0, &mut ks);
        let block = |i: usize| ks[i * 16..(i + 1) * 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0x12, 0x34, 0xca, 0xfe, 0xba, 0xbe];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn roundtrip_rollover_reorder_replay_and_tamper() {
        for suite in [CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AesCm128HmacSha1_32] {
            let key = MasterKey::random();
            let mut tx = SrtpContext::new(suite, &key);
            let mut rx = SrtpContext::new(suite, &key);
            let seqs = [65533u16, 65534, 65535, 0, 1, 2];
            let sent: Vec<Vec<u8>> = seqs.iter().map(|&s| tx.protect_rtp(&rtp(s, &[0xd5; 160])).unwrap()).collect();
            assert_eq!(sent[0].len(), 12 + 160 + suite.rtp_tag_len());
            assert_ne!(&sent[0][12..172], &[0xd5; 160][..]);
            // Reordered across the wrap: 0 before 65535.
            for i in [0usize, 1, 3, 2, 4, 5] {
                assert_eq!(rx.unprotect_rtp(&sent[i]).unwrap(), rtp(seqs[i], &[0xd5; 160]));
            }
            assert_eq!(rx.unprotect_rtp(&sent[4]), Err(SrtpError::Replayed));
            let mut bad = sent[5].clone();
            bad[20] ^= 1;
            let mut rx2 = SrtpContext::new(suite, &key);
            assert_eq!(rx2.unprotect_rtp(&bad), Err(SrtpError::AuthFailed));
            // Wrong key.
            let mut other = SrtpContext::new(suite, &MasterKey::random());
            assert_eq!(other.unprotect_rtp(&sent[0]), Err(SrtpError::AuthFailed));
            assert_eq!(rx.unprotect_rtp(&[0x80, 0, 1]), Err(SrtpError::Malformed));
        }
    }

    #[test]
    fn rollover_counter_is_authenticated() {
        // After a wrap, packets carry ROC 1; the same packet with ROC 0 would not verify.
        let key = MasterKey::random();
        let suite = CryptoSuite::AesCm128HmacSha1_80;
        let mut tx = SrtpContext::new(suite, &key);
        for s in 65000u16..=65535 {
            tx.protect_rtp(&rtp(s, b"a")).unwrap();
        }
        let after_wrap = tx.protect_rtp(&rtp(5, b"b")).unwrap();
        let mut fresh = SrtpContext::new(suite, &key);
        assert_eq!(fresh.unprotect_rtp(&after_wrap), Err(SrtpError::AuthFailed));
        let mut synced = SrtpContext::new(suite, &key);
        let mut tx2 = SrtpContext::new(suite, &key);
        for s in 65530u16..=65535 {
            synced.unprotect_rtp(&tx2.protect_rtp(&rtp(s, b"a")).unwrap()).unwrap();
        }
        assert_eq!(synced.unprotect_rtp(&tx2.protect_rtp(&rtp(5, b"b")).unwrap()).unwrap(), rtp(5, b"b"));
    }

    #[test]
    fn header_extension_and_csrc_stay_clear() {
        let key = MasterKey::random();
        let suite = CryptoSuite::AesCm128HmacSha1_80;
        let mut p = rtp(7, &[]);
        p[0] = 0x80 | 0x10 | 1; // X bit, one CSRC
        p.extend_from_slice(&[1, 2, 3, 4]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // one-word extension
        p.extend_from_slice(b"payload");
        let mut tx = SrtpContext::new(suite, &key);
        let enc = tx.protect_rtp(&p).unwrap();
        assert_eq!(&enc[..24], &p[..24]);
        assert_ne!(&enc[24..31], b"payload");
        let mut rx = SrtpContext::new(suite, &key);
        assert_eq!(rx.unprotect_rtp(&enc).unwrap(), p);
    }

    #[test]
    fn srtcp_roundtrip() {
        let key = MasterKey::random();
        let suite = CryptoSuite::AesCm128HmacSha1_32;
        let mut tx = SrtpContext::new(suite, &key);
        let mut rx = SrtpContext::new(suite, &key);
        // An RR with no report blocks plus some bytes.
        let rr = [0x81, 201, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4];
        let a = tx.protect_rtcp(&rr).unwrap();
        let b = tx.protect_rtcp(&rr).unwrap();
        assert_eq!(a.len(), rr.len() + 4 + 10);
        assert_ne!(a, b);
        assert_eq!(rx.unprotect_rtcp(&b).unwrap(), rr);
        assert_eq!(rx.unprotect_rtcp(&a).unwrap(), rr);
        assert_eq!(rx.unprotect_rtcp(&a), Err(SrtpError::Replayed));
        let mut bad = a.clone();
        bad[9] ^= 0x40;
        assert_eq!(rx.unprotect_rtcp(&bad), Err(SrtpError::AuthFailed));
    }

    #[test]
    fn crypto_attribute_parse_and_format() {
        let key = MasterKey::random();
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", key.to_base64());
        let a = CryptoAttr::parse(&line).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(a.key, key);
        assert_eq!(a.to_string(), line);
        assert_eq!(key.to_base64().len(), 40);
        // baresip-style lifetime is accepted; MKI, session params and odd keys are not.
        let with_life = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{}|2^31", key.to_base64());
        assert_eq!(CryptoAttr::parse(&with_life).unwrap().suite, CryptoSuite::AesCm128HmacSha1_32);
        let mki = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4", key.to_base64());
        assert_eq!(CryptoAttr::parse(&mki), Err(CryptoAttrError::UnsupportedKey));
        let sp = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{} UNENCRYPTED_SRTP", key.to_base64());
        assert_eq!(CryptoAttr::parse(&sp), Err(CryptoAttrError::UnsupportedSessionParams));
        assert!(matches!(
            CryptoAttr::parse("1 AES_256_CM_HMAC_SHA1_80 inline:AAAA"),
            Err(CryptoAttrError::UnsupportedSuite(_))
        ));
        assert_eq!(CryptoAttr::parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"), Err(CryptoAttrError::UnsupportedKey));
        assert_eq!(CryptoAttr::parse("x"), Err(CryptoAttrError::Malformed));
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
        assert_eq!("Mandatory".parse::<SrtpMode>(), Ok(SrtpMode::Mandatory));
        assert!("maybe".parse::<SrtpMode>().is_err());
    }
}

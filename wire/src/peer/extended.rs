//! The BEP 10 extended handshake: the bencoded dictionary carried by the
//! extended message with id 0.
//!
//! bay reads and writes the keys it uses: `m` (which extension messages the
//! sender accepts, under which ids), `v` (client name), `p` (listen port),
//! `reqq` (outstanding requests the sender queues) and `metadata_size`
//! (BEP 9). BEP 10 lets clients add keys freely, so unknown keys are
//! ignored; the keys bay uses must have the types BEP 10 gives them.

use std::collections::BTreeMap;
use std::num::NonZeroU8;

use bytes::Bytes;
use thiserror::Error;

use super::error::PeerError;
use super::message::Message;
use crate::bencode::{self, BencodeError, Node, Owned};

/// The extended message id of the extended handshake (BEP 10).
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// What is wrong with an extended handshake payload.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExtendedHandshakeProblem {
    /// The payload is not (strict, canonical) bencode.
    #[error("not bencode: {0}")]
    NotBencode(BencodeError),
    /// The payload is not a dictionary.
    #[error("not a dictionary")]
    NotADict,
    /// A key bay uses holds another type than BEP 10 gives it.
    #[error("`{0}` has the wrong type")]
    WrongType(&'static str),
    /// An integer is outside the range of its key (a port above 65535, an
    /// extension id above 255, a negative count).
    #[error("`{0}` is out of range")]
    OutOfRange(&'static str),
    /// An extension name in `m` is not UTF-8.
    #[error("an extension name in `m` is not UTF-8")]
    ExtensionNameNotUtf8,
    /// Two extensions in `m` share one non-zero id (BEP 10: "no extension
    /// message share the same one").
    #[error("extension id {0} is used twice in `m`")]
    DuplicateExtensionId(u8),
}

/// A BEP 10 extended handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name to the extended message id the sender wants to
    /// receive it under. Id 0 means the extension is disabled.
    pub extensions: BTreeMap<String, u8>,
    /// `v`: client name and version, for logs. Bytes that are not UTF-8
    /// are replaced, since the name is advisory.
    pub client: Option<String>,
    /// `p`: the sender's TCP listen port.
    pub port: Option<u16>,
    /// `reqq`: how many outstanding requests the sender queues without
    /// dropping any.
    pub reqq: Option<u32>,
    /// `metadata_size` (BEP 9): bytes of the info dictionary. Values above
    /// `i64::MAX` are written as `i64::MAX`, the largest bencode integer
    /// bay's decoder reads.
    pub metadata_size: Option<u64>,
}

/// Bounds for the payload's bencode: BEP 10 dictionaries are flat and
/// small, and the frame itself is already bounded by [`super::Limits`].
const BENCODE_LIMITS: bencode::Limits = bencode::Limits {
    max_depth: 16,
    max_items: 1 << 16,
};

impl ExtendedHandshake {
    /// The id the sender accepts extension `name` under, or `None` if it
    /// does not list it or disabled it.
    pub fn extension_id(&self, name: &str) -> Option<NonZeroU8> {
        self.extensions.get(name).copied().and_then(NonZeroU8::new)
    }

    /// Decodes an extended handshake payload.
    pub fn decode(payload: &[u8]) -> Result<ExtendedHandshake, PeerError> {
        Self::decode_problem(payload).map_err(PeerError::BadExtendedHandshake)
    }

    fn decode_problem(payload: &[u8]) -> Result<ExtendedHandshake, ExtendedHandshakeProblem> {
        let root = bencode::decode_with(payload, &BENCODE_LIMITS)
            .map_err(ExtendedHandshakeProblem::NotBencode)?;
        if root.as_dict().is_none() {
            return Err(ExtendedHandshakeProblem::NotADict);
        }
        Ok(ExtendedHandshake {
            extensions: root
                .get(b"m")
                .map(extensions)
                .transpose()?
                .unwrap_or_default(),
            client: root
                .get(b"v")
                .map(|v| {
                    v.as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .ok_or(ExtendedHandshakeProblem::WrongType("v"))
                })
                .transpose()?,
            port: int_field(&root, "p")?,
            reqq: int_field(&root, "reqq")?,
            metadata_size: int_field(&root, "metadata_size")?,
        })
    }

    /// Appends the canonical bencoded payload to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.to_bencode().encode(out);
    }

    /// The canonical bencoded payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bencode().to_bytes()
    }

    /// The extended message (id 0) carrying this handshake.
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: Bytes::from(self.to_bytes()),
        }
    }

    fn to_bencode(&self) -> Owned {
        let mut m = Owned::dict();
        for (name, id) in &self.extensions {
            m.insert(name.as_bytes(), i64::from(*id));
        }
        let mut dict = Owned::dict();
        dict.insert(b"m", m);
        if let Some(v) = &self.client {
            dict.insert(b"v", v.as_str());
        }
        if let Some(p) = self.port {
            dict.insert(b"p", i64::from(p));
        }
        if let Some(reqq) = self.reqq {
            dict.insert(b"reqq", i64::from(reqq));
        }
        if let Some(size) = self.metadata_size {
            dict.insert(b"metadata_size", size);
        }
        dict
    }
}

/// Reads the `m` dictionary.
fn extensions(m: &Node<'_>) -> Result<BTreeMap<String, u8>, ExtendedHandshakeProblem> {
    let entries = m
        .as_dict()
        .ok_or(ExtendedHandshakeProblem::WrongType("m"))?;
    let mut out = BTreeMap::new();
    let mut used = [false; 256];
    for (name, id) in entries {
        let name = std::str::from_utf8(name)
            .map_err(|_| ExtendedHandshakeProblem::ExtensionNameNotUtf8)?;
        let id = id
            .as_int()
            .ok_or(ExtendedHandshakeProblem::WrongType("m"))?;
        let id = u8::try_from(id).map_err(|_| ExtendedHandshakeProblem::OutOfRange("m"))?;
        if id != 0 {
            let seen = used.get_mut(usize::from(id));
            if let Some(seen) = seen {
                if *seen {
                    return Err(ExtendedHandshakeProblem::DuplicateExtensionId(id));
                }
                *seen = true;
            }
        }
        out.insert(name.to_owned(), id);
    }
    Ok(out)
}

/// Reads integer `key` of `dict` as a `T`, if present.
fn int_field<T: TryFrom<i64>>(
    dict: &Node<'_>,
    key: &'static str,
) -> Result<Option<T>, ExtendedHandshakeProblem> {
    let Some(node) = dict.get(key.as_bytes()) else {
        return Ok(None);
    };
    let value = node
        .as_int()
        .ok_or(ExtendedHandshakeProblem::WrongType(key))?;
    T::try_from(value)
        .map(Some)
        .map_err(|_| ExtendedHandshakeProblem::OutOfRange(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn problem(payload: &[u8]) -> ExtendedHandshakeProblem {
        match ExtendedHandshake::decode(payload) {
            Err(PeerError::BadExtendedHandshake(p)) => p,
            other => panic!("expected a problem, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_libtorrent_style_handshake_and_ignores_unknown_keys() {
        let payload = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi500e11:upload_onlyi1e1:v17:libtorrent 2.0.11e";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.extension_id("ut_metadata"), NonZeroU8::new(2));
        assert_eq!(hs.extension_id("ut_pex"), NonZeroU8::new(1));
        assert_eq!(hs.extension_id("bay_nothing"), None);
        assert_eq!(hs.extensions.len(), 6);
        assert_eq!(hs.client.as_deref(), Some("libtorrent 2.0.11"));
        assert_eq!(hs.port, Some(6881));
        assert_eq!(hs.reqq, Some(500));
        assert_eq!(hs.metadata_size, Some(31235));
    }

    #[test]
    fn a_zero_id_means_disabled() {
        let hs = ExtendedHandshake::decode(b"d1:md6:ut_pexi0eee").unwrap();
        assert_eq!(hs.extensions.get("ut_pex"), Some(&0));
        assert_eq!(hs.extension_id("ut_pex"), None);
    }

    #[test]
    fn an_empty_dict_is_a_valid_handshake() {
        assert_eq!(
            ExtendedHandshake::decode(b"de").unwrap(),
            ExtendedHandshake::default()
        );
    }

    #[test]
    fn encodes_canonically_with_the_bep10_keys() {
        let hs = ExtendedHandshake {
            extensions: BTreeMap::from([
                ("ut_metadata".to_owned(), 3),
                ("lt_donthave".to_owned(), 7),
            ]),
            client: Some("bay 0.1".to_owned()),
            port: Some(6881),
            reqq: Some(250),
            metadata_size: Some(1000),
        };
        assert_eq!(
            hs.to_bytes(),
            b"d1:md11:lt_donthavei7e11:ut_metadatai3ee13:metadata_sizei1000e1:pi6881e4:reqqi250e1:v7:bay 0.1e".to_vec()
        );
        let Message::Extended { id: 0, payload } = hs.to_message() else {
            panic!("not an extended handshake message");
        };
        assert_eq!(ExtendedHandshake::decode(&payload).unwrap(), hs);
    }

    #[test]
    fn a_non_utf8_client_name_is_kept_lossily() {
        let hs = ExtendedHandshake::decode(b"d1:v3:a\xffbe").unwrap();
        assert_eq!(hs.client.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn malformed_handshakes_say_what_is_wrong() {
        assert!(matches!(
            problem(b"d1:m"),
            ExtendedHandshakeProblem::NotBencode(_)
        ));
        assert!(matches!(
            problem(b"dee"),
            ExtendedHandshakeProblem::NotBencode(_)
        ));
        assert!(matches!(
            problem(b"d1:pi1e1:mdee"),
            ExtendedHandshakeProblem::NotBencode(BencodeError::UnsortedKey { .. })
        ));
        assert_eq!(problem(b"li1ee"), ExtendedHandshakeProblem::NotADict);
        assert_eq!(
            problem(b"d1:mi1ee"),
            ExtendedHandshakeProblem::WrongType("m")
        );
        assert_eq!(
            problem(b"d1:md1:a1:bee"),
            ExtendedHandshakeProblem::WrongType("m")
        );
        assert_eq!(
            problem(b"d1:md1:ai256eee"),
            ExtendedHandshakeProblem::OutOfRange("m")
        );
        assert_eq!(
            problem(b"d1:md1:ai-1eee"),
            ExtendedHandshakeProblem::OutOfRange("m")
        );
        assert_eq!(
            problem(b"d1:md1:ai5e1:bi5eee"),
            ExtendedHandshakeProblem::DuplicateExtensionId(5)
        );
        assert_eq!(
            problem(b"d1:md1:\xffi5eee"),
            ExtendedHandshakeProblem::ExtensionNameNotUtf8
        );
        assert_eq!(
            problem(b"d1:pi65536ee"),
            ExtendedHandshakeProblem::OutOfRange("p")
        );
        assert_eq!(
            problem(b"d1:p4:6881e"),
            ExtendedHandshakeProblem::WrongType("p")
        );
        assert_eq!(
            problem(b"d4:reqqi-1ee"),
            ExtendedHandshakeProblem::OutOfRange("reqq")
        );
        assert_eq!(
            problem(b"d13:metadata_sizei-5ee"),
            ExtendedHandshakeProblem::OutOfRange("metadata_size")
        );
        assert_eq!(
            problem(b"d1:vi1ee"),
            ExtendedHandshakeProblem::WrongType("v")
        );
        assert!(ExtendedHandshake::decode(b"x").unwrap_err().is_peer_fault());
    }

    #[test]
    fn two_disabled_extensions_may_share_id_zero() {
        let hs = ExtendedHandshake::decode(b"d1:md1:ai0e1:bi0eee").unwrap();
        assert_eq!(hs.extensions.len(), 2);
    }

    fn any_handshake() -> impl Strategy<Value = ExtendedHandshake> {
        (
            proptest::collection::btree_map("[a-z_]{1,12}", 0u8..=255, 0..6),
            proptest::option::of(".{0,20}"),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(0u64..=i64::MAX as u64),
        )
            .prop_map(|(mut extensions, client, port, reqq, metadata_size)| {
                // Ids must be unique among enabled extensions.
                let mut seen = [false; 256];
                for id in extensions.values_mut() {
                    if std::mem::replace(&mut seen[usize::from(*id)], true) {
                        *id = 0;
                    }
                }
                ExtendedHandshake {
                    extensions,
                    client,
                    port,
                    reqq,
                    metadata_size,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trips_through_bencode(hs in any_handshake()) {
            prop_assert_eq!(ExtendedHandshake::decode(&hs.to_bytes()), Ok(hs));
        }

        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = ExtendedHandshake::decode(&payload);
        }
    }
}

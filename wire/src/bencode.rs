//! Bencode (BEP 3), strict.
//!
//! The decoder borrows from its input and keeps the exact bytes of every
//! value ([`Node::raw`]), because a torrent's info hash is taken over the
//! info dictionary as it was sent, not as we would re-encode it. It accepts
//! only canonical input (no leading zeros, no `-0`, dictionary keys strictly
//! ascending), so that any value it accepts re-encodes to the same bytes.
//! Depth and item counts are bounded so that hostile input cannot exhaust
//! the stack or memory.
//!
//! The encoder ([`Owned`]) writes canonical bencode: dictionaries are kept
//! in a `BTreeMap`, so keys come out sorted.

use std::collections::BTreeMap;

/// Bounds on what the decoder accepts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries.
    pub max_depth: usize,
    /// Most values (of any kind) in one document.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_items: 1 << 20,
        }
    }
}

/// Why some bytes are not acceptable bencode. Offsets are into the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BencodeError {
    #[error("bencode ends early at byte {offset}")]
    Truncated { offset: usize },
    #[error("unexpected byte 0x{byte:02x} at {offset}")]
    UnexpectedByte { offset: usize, byte: u8 },
    #[error("non-canonical integer at {offset} (leading zero, -0 or empty)")]
    NonCanonicalInt { offset: usize },
    #[error("integer at {offset} does not fit in 64 bits")]
    IntOverflow { offset: usize },
    #[error("string length at {offset} is larger than the input")]
    LengthTooLarge { offset: usize },
    #[error("dictionary key at {offset} is not in ascending order")]
    UnsortedKey { offset: usize },
    #[error("dictionary key at {offset} repeats the previous key")]
    DuplicateKey { offset: usize },
    #[error("{count} trailing bytes after the value, at {offset}")]
    TrailingBytes { offset: usize, count: usize },
    #[error("nesting deeper than {max} at {offset}")]
    TooDeep { offset: usize, max: usize },
    #[error("more than {max} values")]
    TooManyItems { max: usize },
}

/// A decoded value; its children are [`Node`]s so each keeps its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Node<'a>>),
    /// Keys are strictly ascending (the decoder checks it).
    Dict(Vec<(&'a [u8], Node<'a>)>),
}

/// A value together with the exact bytes it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

impl<'a> Node<'a> {
    pub fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value as text, if it is a byte string holding UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Node<'a>]> {
        match &self.value {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Node<'a>)]> {
        match &self.value {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Looks a key up in a dictionary; `None` if absent or not a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Node<'a>> {
        let dict = self.as_dict()?;
        dict.binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .and_then(|i| dict.get(i))
            .map(|(_, v)| v)
    }

    /// An owned copy, for editing and re-encoding.
    pub fn to_owned_value(&self) -> Owned {
        match &self.value {
            Value::Int(i) => Owned::Int(*i),
            Value::Bytes(b) => Owned::Bytes(b.to_vec()),
            Value::List(l) => Owned::List(l.iter().map(Node::to_owned_value).collect()),
            Value::Dict(d) => Owned::Dict(
                d.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Node<'_>, BencodeError> {
    decode_with(input, &Limits::default())
}

/// [`decode`] with explicit limits.
pub fn decode_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Node<'a>, BencodeError> {
    let (node, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(BencodeError::TrailingBytes {
            offset: used,
            count: input.len() - used,
        });
    }
    Ok(node)
}

/// Decodes the value at the start of `input`; returns it and the number of
/// bytes it took. Bytes after it are left to the caller.
pub fn decode_prefix<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(Node<'a>, usize), BencodeError> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        items: 0,
        limits,
    };
    let node = decoder.value(0)?;
    Ok((node, decoder.pos))
}

struct Decoder<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    limits: &'l Limits,
}

impl<'a> Decoder<'a, '_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated { offset: self.pos })
    }

    fn count_item(&mut self) -> Result<(), BencodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(BencodeError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, BencodeError> {
        self.count_item()?;
        let start = self.pos;
        let value = match self.peek()? {
            b'i' => Value::Int(self.int()?),
            b'0'..=b'9' => Value::Bytes(self.bytes()?),
            b'l' => {
                self.enter(depth)?;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Value::List(list)
            }
            b'd' => {
                self.enter(depth)?;
                Value::Dict(self.dict_entries(depth)?)
            }
            byte => {
                return Err(BencodeError::UnexpectedByte {
                    offset: self.pos,
                    byte,
                })
            }
        };
        let raw = self
            .input
            .get(start..self.pos)
            .ok_or(BencodeError::Truncated { offset: self.pos })?;
        Ok(Node { value, raw })
    }

    /// Steps over the `l` or `d` opening a container at `depth`.
    fn enter(&mut self, depth: usize) -> Result<(), BencodeError> {
        if depth >= self.limits.max_depth {
            return Err(BencodeError::TooDeep {
                offset: self.pos,
                max: self.limits.max_depth,
            });
        }
        self.pos += 1;
        Ok(())
    }

    fn dict_entries(&mut self, depth: usize) -> Result<Vec<(&'a [u8], Node<'a>)>, BencodeError> {
        let mut entries: Vec<(&'a [u8], Node<'a>)> = Vec::new();
        while self.peek()? != b'e' {
            let key_offset = self.pos;
            let key = match self.peek()? {
                b'0'..=b'9' => self.bytes()?,
                byte => {
                    return Err(BencodeError::UnexpectedByte {
                        offset: key_offset,
                        byte,
                    })
                }
            };
            if let Some((previous, _)) = entries.last() {
                match (*previous).cmp(key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(BencodeError::DuplicateKey { offset: key_offset })
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(BencodeError::UnsortedKey { offset: key_offset })
                    }
                }
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        Ok(entries)
    }

    /// `i<digits>e`, canonical only.
    fn int(&mut self) -> Result<i64, BencodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let digits = self.digits()?;
        if self.peek()? != b'e' {
            let byte = self.peek()?;
            return Err(BencodeError::UnexpectedByte {
                offset: self.pos,
                byte,
            });
        }
        self.pos += 1;
        let non_canonical = digits.is_empty()
            || (digits.len() > 1 && digits.first() == Some(&b'0'))
            || (negative && digits == b"0");
        if non_canonical {
            return Err(BencodeError::NonCanonicalInt { offset: start });
        }
        let mut value: i64 = 0;
        for &d in digits {
            let digit = i64::from(d - b'0');
            value = value
                .checked_mul(10)
                .and_then(|v| {
                    if negative {
                        v.checked_sub(digit)
                    } else {
                        v.checked_add(digit)
                    }
                })
                .ok_or(BencodeError::IntOverflow {
                    offset: digits_start,
                })?;
        }
        Ok(value)
    }

    /// `<len>:<bytes>`, canonical length only.
    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let start = self.pos;
        let digits = self.digits()?;
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(BencodeError::NonCanonicalInt { offset: start });
        }
        let byte = self.peek()?;
        if byte != b':' {
            return Err(BencodeError::UnexpectedByte {
                offset: self.pos,
                byte,
            });
        }
        self.pos += 1;
        let remaining = self.input.len() - self.pos;
        let mut len: usize = 0;
        for &d in digits {
            len = len
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(d - b'0')))
                .filter(|&v| v <= remaining)
                .ok_or(BencodeError::LengthTooLarge { offset: start })?;
        }
        let data = self
            .input
            .get(self.pos..self.pos + len)
            .ok_or(BencodeError::LengthTooLarge { offset: start })?;
        self.pos += len;
        Ok(data)
    }

    fn digits(&mut self) -> Result<&'a [u8], BencodeError> {
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        Ok(self.input.get(start..self.pos).unwrap_or_default())
    }
}

/// An owned bencode value that encodes canonically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owned {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Owned>),
    Dict(BTreeMap<Vec<u8>, Owned>),
}

impl Owned {
    /// An empty dictionary.
    pub fn dict() -> Owned {
        Owned::Dict(BTreeMap::new())
    }

    /// Sets `key` in a dictionary; does nothing to other kinds of value.
    pub fn insert(&mut self, key: &[u8], value: impl Into<Owned>) -> &mut Self {
        if let Owned::Dict(d) = self {
            d.insert(key.to_vec(), value.into());
        }
        self
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Owned::Int(i) => encode_int(out, *i),
            Owned::Bytes(b) => encode_bytes(out, b),
            Owned::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Owned::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl From<i64> for Owned {
    fn from(v: i64) -> Self {
        Owned::Int(v)
    }
}

impl From<u64> for Owned {
    fn from(v: u64) -> Self {
        Owned::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&[u8]> for Owned {
    fn from(v: &[u8]) -> Self {
        Owned::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Owned {
    fn from(v: Vec<u8>) -> Self {
        Owned::Bytes(v)
    }
}

impl From<&str> for Owned {
    fn from(v: &str) -> Self {
        Owned::Bytes(v.as_bytes().to_vec())
    }
}

impl From<String> for Owned {
    fn from(v: String) -> Self {
        Owned::Bytes(v.into_bytes())
    }
}

impl From<Vec<Owned>> for Owned {
    fn from(v: Vec<Owned>) -> Self {
        Owned::List(v)
    }
}

/// Appends `i<v>e`.
pub fn encode_int(out: &mut Vec<u8>, v: i64) {
    out.push(b'i');
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
pub fn encode_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(input: &[u8]) -> BencodeError {
        decode(input).expect_err("input should be rejected")
    }

    #[test]
    fn decodes_each_kind_with_spans() {
        let input = b"d3:bari-42e3:fool4:spami0eee";
        let node = decode(input).unwrap();
        assert_eq!(node.raw, &input[..]);
        assert_eq!(node.get(b"bar").unwrap().as_int(), Some(-42));
        let foo = node.get(b"foo").unwrap();
        assert_eq!(foo.raw, b"l4:spami0ee");
        let list = foo.as_list().unwrap();
        assert_eq!(list[0].as_str(), Some("spam"));
        assert_eq!(list[1].raw, b"i0e");
        assert!(node.get(b"baz").is_none());
    }

    #[test]
    fn rejects_non_canonical_integers() {
        for bad in [&b"i-0e"[..], b"i03e", b"ie", b"i-e", b"i00e"] {
            assert!(
                matches!(err(bad), BencodeError::NonCanonicalInt { .. }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            err(b"03:abc"),
            BencodeError::NonCanonicalInt { .. }
        ));
    }

    #[test]
    fn integer_bounds() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert!(matches!(
            err(b"i9223372036854775808e"),
            BencodeError::IntOverflow { .. }
        ));
    }

    #[test]
    fn rejects_unsorted_and_duplicate_keys() {
        assert_eq!(
            err(b"d1:bi1e1:ai2ee"),
            BencodeError::UnsortedKey { offset: 7 }
        );
        assert_eq!(
            err(b"d1:ai1e1:ai2ee"),
            BencodeError::DuplicateKey { offset: 7 }
        );
        assert!(matches!(
            err(b"di1ei2ee"),
            BencodeError::UnexpectedByte { .. }
        ));
    }

    #[test]
    fn rejects_trailing_and_truncated() {
        assert_eq!(
            err(b"i1ei2e"),
            BencodeError::TrailingBytes {
                offset: 3,
                count: 3
            }
        );
        for bad in [&b""[..], b"i12", b"l", b"d1:a", b"5:abc", b"3"] {
            let e = err(bad);
            assert!(
                matches!(
                    e,
                    BencodeError::Truncated { .. } | BencodeError::LengthTooLarge { .. }
                ),
                "{bad:?}: {e}"
            );
        }
        let (node, used) = decode_prefix(b"i1eXYZ", &Limits::default()).unwrap();
        assert_eq!((node.as_int(), used), (Some(1), 3));
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        assert!(matches!(
            err(b"99999999999999999999999:x"),
            BencodeError::LengthTooLarge { .. }
        ));
    }

    #[test]
    fn depth_and_item_limits() {
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(matches!(err(&deep), BencodeError::TooDeep { max: 64, .. }));
        let limits = Limits {
            max_depth: 64,
            max_items: 3,
        };
        assert!(matches!(
            decode_with(b"li1ei2ei3ee", &limits),
            Err(BencodeError::TooManyItems { max: 3 })
        ));
    }

    #[test]
    fn owned_encodes_sorted() {
        let mut d = Owned::dict();
        d.insert(b"zeta", 1i64).insert(b"alpha", "x");
        assert_eq!(d.to_bytes(), b"d5:alpha1:x4:zetai1ee");
    }

    fn owned_strategy() -> impl Strategy<Value = Owned> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Owned::Int),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Owned::Bytes),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Owned::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..8),
                    inner,
                    0..8
                )
                .prop_map(Owned::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(value in owned_strategy()) {
            let bytes = value.to_bytes();
            let node = decode(&bytes).unwrap();
            prop_assert_eq!(node.raw, &bytes[..]);
            prop_assert_eq!(node.to_owned_value(), value);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(node) = decode(&bytes) {
                // Canonical input re-encodes to itself.
                prop_assert_eq!(node.to_owned_value().to_bytes(), bytes);
            }
        }
    }
}

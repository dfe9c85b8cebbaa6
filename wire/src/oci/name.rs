//! Repository names and tags, by the distribution spec's grammar.
//!
//! A repository name is one or more path components joined by `/`, each
//! `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, at most 255 bytes in all. A tag
//! is `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. Both are checked by hand-written
//! scanners (no regex engine) and both can only hold ASCII, so a valid name
//! never holds `..`, a leading or doubled `/`, `%`, or anything a URL or a
//! path would read specially.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest repository name the spec lets clients rely on.
pub const MAX_NAME_LEN: usize = 255;

/// Longest tag: one leading character and 127 more.
pub const MAX_TAG_LEN: usize = 128;

/// Why a string is not a repository name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name was empty.
    #[error("repository name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("repository name is {len} bytes, more than {MAX_NAME_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A byte outside `[a-z0-9._/-]`.
    #[error("repository name has a byte not allowed in names at offset {offset}")]
    InvalidByte {
        /// Offset of the byte.
        offset: usize,
    },
    /// A path component is empty (leading, trailing or doubled `/`).
    #[error("repository name has an empty path component at offset {offset}")]
    EmptyComponent {
        /// Offset where the empty component starts.
        offset: usize,
    },
    /// A separator that is not `.`, `_`, `__` or a run of `-`, or one at
    /// the start or end of a component.
    #[error("repository name has a misplaced or invalid separator at offset {offset}")]
    BadSeparator {
        /// Offset of the separator run.
        offset: usize,
    },
}

/// Why a string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// The tag was empty.
    #[error("tag is empty")]
    Empty,
    /// The tag is longer than [`MAX_TAG_LEN`].
    #[error("tag is {len} bytes, more than {MAX_TAG_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The first byte is not `[a-zA-Z0-9_]`.
    #[error("tag must start with a letter, digit or '_'")]
    BadFirstByte,
    /// A later byte is not `[a-zA-Z0-9._-]`.
    #[error("tag has a byte not allowed in tags at offset {offset}")]
    InvalidByte {
        /// Offset of the byte.
        offset: usize,
    },
}

/// A validated repository name such as `library/ubuntu`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// Parses and validates a repository name.
    pub fn parse(s: &str) -> Result<RepositoryName, NameError> {
        validate_name(s)?;
        Ok(RepositoryName(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's `/`-separated path components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn validate_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: s.len() });
    }
    let mut offset = 0;
    for component in s.split('/') {
        validate_component(component.as_bytes(), offset)?;
        offset += component.len() + 1;
    }
    Ok(())
}

/// Checks one path component; `base` is its offset in the whole name.
fn validate_component(c: &[u8], base: usize) -> Result<(), NameError> {
    if c.is_empty() {
        return Err(NameError::EmptyComponent { offset: base });
    }
    let mut i = 0;
    while i < c.len() {
        let b = c.get(i).copied().unwrap_or_default();
        if is_alnum(b) {
            i += 1;
            continue;
        }
        if !matches!(b, b'.' | b'_' | b'-') {
            return Err(NameError::InvalidByte { offset: base + i });
        }
        let start = i;
        while c.get(i).is_some_and(|&b| matches!(b, b'.' | b'_' | b'-')) {
            i += 1;
        }
        let run = c.get(start..i).unwrap_or_default();
        let separator_ok = matches!(run, b"." | b"_" | b"__") || run.iter().all(|&b| b == b'-');
        let between_alnums = start > 0 && c.get(i).copied().is_some_and(is_alnum);
        if !separator_ok || !between_alnums {
            return Err(NameError::BadSeparator {
                offset: base + start,
            });
        }
    }
    Ok(())
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryName({})", self.0)
    }
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<RepositoryName, NameError> {
        RepositoryName::parse(s)
    }
}

/// A validated tag such as `latest` or `1.25-alpine`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parses and validates a tag.
    pub fn parse(s: &str) -> Result<Tag, TagError> {
        let bytes = s.as_bytes();
        let first = *bytes.first().ok_or(TagError::Empty)?;
        if bytes.len() > MAX_TAG_LEN {
            return Err(TagError::TooLong { len: bytes.len() });
        }
        if !(first.is_ascii_alphanumeric() || first == b'_') {
            return Err(TagError::BadFirstByte);
        }
        if let Some(offset) = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(TagError::InvalidByte { offset });
        }
        Ok(Tag(s.to_owned()))
    }

    /// The tag `latest`, which clients assume when none is given.
    pub fn latest() -> Tag {
        Tag("latest".to_owned())
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Tag, TagError> {
        Tag::parse(s)
    }
}

/// Serde through the validating parser, for types that round-trip as text.
macro_rules! serde_as_str {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        <$ty>::parse(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

serde_as_str!(RepositoryName, "a repository name");
serde_as_str!(Tag, "a tag");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Names the grammar accepts, for property tests here and elsewhere.
    pub(crate) fn name_strategy() -> impl Strategy<Value = String> + Clone {
        let component = "[a-z0-9]{1,6}(([._]|__|-{1,3})[a-z0-9]{1,6}){0,3}";
        proptest::collection::vec(component, 1..5).prop_map(|parts| parts.join("/"))
    }

    /// Tags the grammar accepts.
    pub(crate) fn tag_strategy() -> impl Strategy<Value = String> + Clone {
        "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
    }

    #[test]
    fn accepts_spec_names() {
        for name in [
            "ubuntu",
            "library/ubuntu",
            "a/b/c/d",
            "foo.bar",
            "foo_bar",
            "foo__bar",
            "foo---bar",
            "f00/b4r-baz.qux__x",
            "0",
        ] {
            assert!(RepositoryName::parse(name).is_ok(), "{name}");
        }
        let max = "a".repeat(MAX_NAME_LEN);
        assert!(RepositoryName::parse(&max).is_ok());
    }

    #[test]
    fn rejects_hostile_names() {
        use NameError::*;
        let cases = [
            ("", Empty),
            ("/ubuntu", EmptyComponent { offset: 0 }),
            ("ubuntu/", EmptyComponent { offset: 7 }),
            ("a//b", EmptyComponent { offset: 2 }),
            ("..", BadSeparator { offset: 0 }),
            ("a/../b", BadSeparator { offset: 2 }),
            ("a/./b", BadSeparator { offset: 2 }),
            ("a..b", BadSeparator { offset: 1 }),
            ("a___b", BadSeparator { offset: 1 }),
            ("a._b", BadSeparator { offset: 1 }),
            ("a-", BadSeparator { offset: 1 }),
            ("-a", BadSeparator { offset: 0 }),
            ("_a", BadSeparator { offset: 0 }),
            ("Ubuntu", InvalidByte { offset: 0 }),
            ("a%2fb", InvalidByte { offset: 1 }),
            ("a\0b", InvalidByte { offset: 1 }),
            ("a\\b", InvalidByte { offset: 1 }),
            ("a:b", InvalidByte { offset: 1 }),
            ("é", InvalidByte { offset: 0 }),
        ];
        for (input, want) in cases {
            assert_eq!(RepositoryName::parse(input), Err(want), "input {input:?}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            RepositoryName::parse(&long),
            Err(TooLong {
                len: MAX_NAME_LEN + 1
            })
        );
    }

    #[test]
    fn tags() {
        for tag in ["latest", "_", "1.25-alpine", "A_b.C-d", &"x".repeat(128)] {
            assert!(Tag::parse(tag).is_ok(), "{tag}");
        }
        assert_eq!(Tag::parse(""), Err(TagError::Empty));
        assert_eq!(Tag::parse(".hidden"), Err(TagError::BadFirstByte));
        assert_eq!(Tag::parse("-x"), Err(TagError::BadFirstByte));
        assert_eq!(Tag::parse("a:b"), Err(TagError::InvalidByte { offset: 1 }));
        assert_eq!(Tag::parse("a/b"), Err(TagError::InvalidByte { offset: 1 }));
        assert_eq!(
            Tag::parse(&"x".repeat(129)),
            Err(TagError::TooLong { len: 129 })
        );
        assert_eq!(Tag::latest().as_str(), "latest");
    }

    #[test]
    fn serde_validates() {
        let n: RepositoryName = serde_json::from_str("\"library/ubuntu\"").unwrap();
        assert_eq!(n.as_str(), "library/ubuntu");
        assert!(serde_json::from_str::<RepositoryName>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<Tag>("\".x\"").is_err());
    }

    proptest! {
        #[test]
        fn name_round_trip(name in name_strategy()) {
            prop_assume!(name.len() <= MAX_NAME_LEN);
            let parsed = RepositoryName::parse(&name).unwrap();
            prop_assert_eq!(parsed.to_string(), name.clone());
            prop_assert_eq!(RepositoryName::parse(&parsed.to_string()), Ok(parsed));
        }

        #[test]
        fn tag_round_trip(tag in tag_strategy()) {
            let parsed = Tag::parse(&tag).unwrap();
            prop_assert_eq!(Tag::parse(&parsed.to_string()), Ok(parsed));
        }

        #[test]
        fn accepted_names_are_path_safe(s in "[a-z0-9./_-]{0,40}") {
            if let Ok(name) = RepositoryName::parse(&s) {
                for c in name.components() {
                    prop_assert!(!c.is_empty() && c != "." && c != "..");
                    prop_assert!(!c.starts_with('.') && !c.ends_with('.'));
                }
            }
        }
    }
}

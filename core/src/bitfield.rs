//! Which pieces of a torrent a party has.
//!
//! The layout is the BEP 3 one (piece 0 is the high bit of the first byte),
//! so a peer's BITFIELD payload is taken as it is and ours is sent as it is.
//! Spare bits after the last piece must be zero: a peer that sets them is
//! misbehaving, and [`Bitfield::from_payload`] says so.

/// A fixed-length set of piece indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    ones: u32,
}

/// A BITFIELD payload that does not fit the torrent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    #[error("bitfield is {got} bytes, a torrent of {pieces} pieces needs {want}")]
    WrongLength {
        got: usize,
        want: usize,
        pieces: u32,
    },
    #[error("bitfield sets bits past the last piece ({pieces} pieces)")]
    SpareBitsSet { pieces: u32 },
}

impl Bitfield {
    /// An empty set for a torrent of `len` pieces.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bits: vec![0; byte_len(len)],
            len,
            ones: 0,
        }
    }

    /// A full set for a torrent of `len` pieces.
    pub fn full(len: u32) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Takes a peer's BITFIELD payload, checking it fits `len` pieces.
    pub fn from_payload(payload: &[u8], len: u32) -> Result<Bitfield, BitfieldError> {
        let want = byte_len(len);
        if payload.len() != want {
            return Err(BitfieldError::WrongLength {
                got: payload.len(),
                want,
                pieces: len,
            });
        }
        let spare = (want as u64 * 8 - u64::from(len)) as u32;
        if spare > 0 {
            let mask = (1u8 << spare) - 1;
            if payload.last().is_some_and(|b| b & mask != 0) {
                return Err(BitfieldError::SpareBitsSet { pieces: len });
            }
        }
        let ones = payload.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bits: payload.to_vec(),
            len,
            ones,
        })
    }

    /// The BITFIELD payload for this set.
    pub fn as_payload(&self) -> &[u8] {
        &self.bits
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pieces are in the set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    pub fn has(&self, piece: u32) -> bool {
        let (byte, mask) = position(piece);
        piece < self.len && self.bits.get(byte).is_some_and(|b| b & mask != 0)
    }

    /// Adds `piece`; returns whether it was new. Out of range does nothing.
    pub fn set(&mut self, piece: u32) -> bool {
        if piece >= self.len || self.has(piece) {
            return false;
        }
        let (byte, mask) = position(piece);
        if let Some(b) = self.bits.get_mut(byte) {
            *b |= mask;
            self.ones += 1;
        }
        true
    }

    /// Removes `piece`; returns whether it was there.
    pub fn clear(&mut self, piece: u32) -> bool {
        if !self.has(piece) {
            return false;
        }
        let (byte, mask) = position(piece);
        if let Some(b) = self.bits.get_mut(byte) {
            *b &= !mask;
            self.ones -= 1;
        }
        true
    }

    /// The pieces in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.has(i))
    }
}

fn byte_len(pieces: u32) -> usize {
    (pieces as usize).div_ceil(8)
}

fn position(piece: u32) -> (usize, u8) {
    ((piece / 8) as usize, 0x80 >> (piece % 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn piece_zero_is_the_high_bit() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(b.set(9));
        assert!(!b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.as_payload(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert!(b.clear(0));
        assert!(!b.has(0));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn payload_must_fit() {
        assert_eq!(
            Bitfield::from_payload(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                want: 2,
                pieces: 10
            })
        );
        assert_eq!(
            Bitfield::from_payload(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet { pieces: 10 })
        );
        let b = Bitfield::from_payload(&[0xff, 0xc0], 10).unwrap();
        assert!(b.is_full());
        assert_eq!(Bitfield::full(10), b);
    }

    proptest! {
        #[test]
        fn payload_round_trips(pieces in 1u32..200, picks in proptest::collection::vec(any::<u32>(), 0..50)) {
            let mut b = Bitfield::new(pieces);
            for p in picks {
                b.set(p % pieces);
            }
            let back = Bitfield::from_payload(b.as_payload(), pieces).unwrap();
            prop_assert_eq!(back.count(), b.iter().count() as u32);
            prop_assert_eq!(back, b);
        }
    }
}

//! What a message costs on a link, and the state of one host's links.
//!
//! Links are shared the way TCP flows over a shaped access link share
//! them: a host's uplink sends one block at a time, round robin over the
//! connections that have blocks waiting; a block then reaches the
//! receiver's downlink, which passes it on at once when idle (its
//! serialisation overlapped the sender's) and otherwise after the blocks
//! ahead of it. Small messages (requests, HAVEs, ACKs) take their share of
//! both links without waiting behind bulk data, as the benchmark's
//! shaping (small packets first) and per-flow queueing do, but never
//! overtake data sent before them on the same connection.

use std::collections::VecDeque;

use bay_wire::peer::Message;

/// Virtual time, nanoseconds.
pub type Time = u64;

/// TCP/IP/Ethernet bytes per packet.
const FRAMING: u64 = 66;
/// TCP payload per full packet.
const MSS: u64 = 1448;

/// Bytes on the wire for `payload` bytes sent in one go.
pub fn wire_bytes(payload: u64) -> u64 {
    payload + FRAMING * payload.div_ceil(MSS).max(1)
}

/// ACK bytes the receiver of `payload` bytes sends back (one ACK per two
/// packets).
pub fn ack_bytes(payload: u64) -> u64 {
    FRAMING * payload.div_ceil(MSS).div_ceil(2)
}

/// Whether the message is bulk data (waits its turn on the uplink).
pub fn is_bulk(m: &Message) -> bool {
    matches!(m, Message::Piece(_))
}

/// Whether a message is sent once per block (its count shrinks with the
/// unit scale, so each simulated one stands for `scale` real ones).
pub fn per_block(m: &Message) -> bool {
    matches!(
        m,
        Message::Request(_) | Message::Cancel(_) | Message::Reject(_) | Message::Piece(_)
    )
}

/// Nanoseconds `bytes` take at `rate` bytes a second.
pub fn ns(bytes: f64, rate: f64) -> Time {
    (bytes * 1e9 / rate).round() as Time
}

/// One direction of a connection.
#[derive(Debug, Default)]
pub struct Dir {
    /// Handed to the engine, not yet on the wire.
    pub sendq: VecDeque<Wire>,
    /// On the wire, with when each reaches the receiver.
    pub inflight: VecDeque<(Time, Wire)>,
    /// When the last thing sent this way arrives: nothing sent later
    /// arrives earlier (one TCP stream).
    pub last_arrival: Time,
    /// In its host's uplink round robin.
    pub queued: bool,
}

/// What travels over a connection.
#[derive(Debug)]
pub enum Wire {
    /// The accepting side's handshake.
    Hello,
    Msg(Message),
}

impl Wire {
    pub fn is_bulk(&self) -> bool {
        matches!(self, Wire::Msg(m) if is_bulk(m))
    }
}

/// One host's access link.
#[derive(Debug)]
pub struct Links {
    /// Bytes a second, simulated units.
    pub up: f64,
    pub down: f64,
    /// One-way latency of the access link.
    pub lat: Time,
    /// The uplink is busy until then.
    pub up_busy: Time,
    /// Directions with a block waiting, in round-robin order.
    pub up_queue: VecDeque<u32>,
    /// An uplink event is pending.
    pub up_armed: bool,
    /// The downlink has passed on everything queued by then.
    pub down_free: Time,
}

impl Links {
    pub fn new(up: f64, down: f64, lat: Time) -> Links {
        Links {
            up,
            down,
            lat,
            up_busy: 0,
            up_queue: VecDeque::new(),
            up_armed: false,
            down_free: 0,
        }
    }

    /// Small packets take uplink time without waiting for it.
    pub fn charge_up(&mut self, now: Time, bytes: f64) {
        self.up_busy = self.up_busy.max(now) + ns(bytes, self.up);
    }

    pub fn charge_down(&mut self, now: Time, bytes: f64) {
        self.down_free = self.down_free.max(now) + ns(bytes, self.down);
    }
}

//! bay-core: what both bay programs share.
//!
//! It owns the blob store (content addressed, crash safe, evicting), the
//! piece engine (swarms, picking, peers, choking), the announce client, web
//! seed fallback, the stream reader that yields only verified bytes, and the
//! upstream registry client (auth challenges, tokens, blob and manifest
//! reads, redirects).
//!
//! It must not hold policy of either program (which tracker owns a blob,
//! which client may read what): those decisions live in tracker/ and
//! proxy/, which call in here.

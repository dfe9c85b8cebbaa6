//! The BEP 10 extended handshake payload.

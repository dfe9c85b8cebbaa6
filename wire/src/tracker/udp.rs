//! The UDP tracker protocol (BEP 15).

//! bay-proxy: a registry to the local image client.
//!
//! It will own the request routing (host prefix, containerd `?ns=`, fixed
//! upstream), pass-through of every non-blob request, and blob reads
//! answered from the cache, the swarm or the registry.
//!
//! It must never be an open proxy, never serve an unverified byte, and
//! never let a client's credentials reach a peer, a log or the disk.

pub mod route;

//! The store's keys and values, in key order: a persistent map, so a snapshot's view of it is
//! taken in constant time while the store goes on changing.

use std::sync::Arc;

use imbl::OrdMap;

/// Keys and values, in key order.
pub(crate) type Pairs = OrdMap<Arc<[u8]>, Arc<[u8]>>;

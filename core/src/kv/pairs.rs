//! The store's keys and values, in key order: a persistent map, so a snapshot's view of it is
//! taken in constant time while the store goes on changing.

use std::sync::Arc;

use imbl::OrdMap;

use crate::kv::key::Key;

/// Keys and values, in key order. Values are reference counted: a node copied on write while
/// a view is alive shares them with the view's.
pub(crate) type Pairs = OrdMap<Key, Arc<[u8]>>;

//! entities (in progress)

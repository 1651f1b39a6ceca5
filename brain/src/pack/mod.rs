//! pack (in progress)

//! classifier (in progress)

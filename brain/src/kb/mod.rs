//! kb (in progress)

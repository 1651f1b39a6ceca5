//! commerce (in progress)

//! emotion (in progress)

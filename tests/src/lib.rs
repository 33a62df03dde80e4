//! Shared helpers of gemelo's end-to-end tests.

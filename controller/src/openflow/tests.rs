//! Cross-family tests of the codec: round trips, bytes produced or checked
//! by Open vSwitch (`ovs-ofctl ofp-print` as the oracle), malformed input
//! and a no-panic property test.

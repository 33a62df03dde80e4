//! OpenFlow 1.3 codec.

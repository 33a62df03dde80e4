//! The embedded lab: a production network built from a topology file.

//! Discovery: what lives on the production fabric (devices, addresses, names and
//! the services they run), gathered passively from packet-in copies and actively
//! by probes entering the fabric from the controller's side.

pub mod probe;

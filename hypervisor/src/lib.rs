//! gemelo-hypervisor: turns a twin plan into running twin hosts.

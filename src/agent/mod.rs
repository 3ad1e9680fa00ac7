//! Static pod agent.

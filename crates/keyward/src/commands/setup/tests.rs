//! Setup on copies of real settings files.

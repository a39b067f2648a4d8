//! One module per subcommand. Each takes parsed arguments and returns a typed result; the
//! binary maps it to an exit code.

pub mod capacity;
pub mod check;
pub mod cluster;
pub mod compare;
pub mod faultfs;
pub mod hosts;
pub mod load;
pub mod node;
pub mod repeat;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod suite;

//! Full-link gray through message queues: messages carry the gray tag, and
//! consumers follow lanes.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
pub mod lane;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
#[cfg(feature = "rabbitmq")]
#[cfg_attr(docsrs, doc(cfg(feature = "rabbitmq")))]
pub mod rabbitmq;
mod run;
pub mod stats;

pub use error::Error;
pub use lane::{Action, Lane, Liveness, Routed};
pub use run::{Incoming, Running};
pub use stats::Snapshot;

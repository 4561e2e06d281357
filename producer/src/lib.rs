//! `playlog produce`: an eventsim-compatible simulation of a music service's users, published to Kafka.
//!
//! The simulation (`site`, `clock`, `catalog`, `population`, `simulation`, `offer_response`) does no I/O;
//! the sinks (`kafka`, `file_sink`), the offer feed (`offer_feed`) and `run` do.

pub mod catalog;
pub mod clock;
pub mod file_sink;
pub mod ids;
pub mod kafka;
pub mod metrics;
pub mod offer_feed;
pub mod offer_response;
pub mod population;
pub mod run;
pub mod simulation;
pub mod sink;
pub mod site;
pub mod song_names;

pub use catalog::SongCatalog;
pub use run::{Destination, Mode, RunOptions, Summary, run};
pub use simulation::{ShardPlan, Simulation, World};
pub use sink::Format;
pub use site::SiteModel;

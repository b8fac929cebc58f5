//! Adapters to web frameworks, one file (or folder) each, behind their features.

#[cfg(feature = "actix-session")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-session")))]
pub mod actix_session;
#[cfg(feature = "express")]
#[cfg_attr(docsrs, doc(cfg(feature = "express")))]
pub mod express;
#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub mod tower_sessions;

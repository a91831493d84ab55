//! Client of VTP.

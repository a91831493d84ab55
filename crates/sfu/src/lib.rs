//! Sans-IO media engine of VTP.

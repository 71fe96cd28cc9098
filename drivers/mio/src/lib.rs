//! raftkv driver.

//! The aws-storm benchmark (see `scripts/aws-storm`).

"""Mining: git plumbing, per-file commit records and the mine() event generator."""

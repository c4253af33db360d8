"""Named architectures, the same in every framework."""

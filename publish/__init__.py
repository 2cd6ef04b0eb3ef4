"""Publishing: documentation generated from schema/, data packages and their targets."""

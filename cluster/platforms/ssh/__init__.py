"""The ssh platform: Ray nodes on hosts you already have, reached over SSH."""

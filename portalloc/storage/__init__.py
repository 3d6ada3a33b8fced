"""Storage: the ledger file (codec, lock, safe reads and writes), where files live, pre-configuration."""

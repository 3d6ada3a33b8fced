"""The core: pydantic models, keys, the pure allocator and its rules, merge, metrics and review. No I/O."""

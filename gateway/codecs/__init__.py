"""Body compression: gzip, deflate, zstd and snappy, each bounded in output."""

"""The `fetch` role: download one model artifact, verify its sha256 and land it atomically in a directory."""

"""Cross-cutting helpers: atomic file writes, format errors, config loading."""

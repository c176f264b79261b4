"""Suite files (TOML) -> validated RunSpecs: loader (files, overrides), expand (grid), preflight."""

"""One package per study: its data, its method, its analysis, its presets and claims."""

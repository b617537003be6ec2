"""The embedded world: procedural road networks, reactive traffic, an expert driver, sensors and splits."""

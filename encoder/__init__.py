"""The sentence encoder shared by the trainer and the exporter (torch; never imported by core or gui)."""

"""Connects the app's hooks: refresh on interaction commit, content neighbours on item save."""

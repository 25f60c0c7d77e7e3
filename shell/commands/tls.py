"""Commands of this area (filled in as the capability lands)."""
